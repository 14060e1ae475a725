from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.class_out import ClassOut
from ...models.class_update import ClassUpdate
from ...models.http_validation_error import HTTPValidationError
from ...types import Response


def _get_kwargs(
    class_id: str,
    *,
    body: ClassUpdate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/v1/classes/{class_id}".format(
            class_id=quote(str(class_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ClassOut | HTTPValidationError | None:
    if response.status_code == 200:
        response_200 = ClassOut.from_dict(response.json())

        return response_200

    if response.status_code == 422:
        response_422 = HTTPValidationError.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ClassOut | HTTPValidationError]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    class_id: str,
    *,
    client: AuthenticatedClient,
    body: ClassUpdate,
) -> Response[ClassOut | HTTPValidationError]:
    """Change a class (admin)

    Args:
        class_id (str): the class's id
        body (ClassUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassOut | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        class_id=class_id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    class_id: str,
    *,
    client: AuthenticatedClient,
    body: ClassUpdate,
) -> ClassOut | HTTPValidationError | None:
    """Change a class (admin)

    Args:
        class_id (str): the class's id
        body (ClassUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassOut | HTTPValidationError
    """

    return sync_detailed(
        class_id=class_id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    class_id: str,
    *,
    client: AuthenticatedClient,
    body: ClassUpdate,
) -> Response[ClassOut | HTTPValidationError]:
    """Change a class (admin)

    Args:
        class_id (str): the class's id
        body (ClassUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassOut | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        class_id=class_id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    class_id: str,
    *,
    client: AuthenticatedClient,
    body: ClassUpdate,
) -> ClassOut | HTTPValidationError | None:
    """Change a class (admin)

    Args:
        class_id (str): the class's id
        body (ClassUpdate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassOut | HTTPValidationError
    """

    return (
        await asyncio_detailed(
            class_id=class_id,
            client=client,
            body=body,
        )
    ).parsed
