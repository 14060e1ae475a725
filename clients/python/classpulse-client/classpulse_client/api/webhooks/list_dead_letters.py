from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.http_validation_error import HTTPValidationError
from ...models.list_dead_letters_response_200_item import ListDeadLettersResponse200Item
from ...types import UNSET, Response, Unset


def _get_kwargs(
    webhook_id: str,
    *,
    offset: int | Unset = 0,
    limit: int | Unset = 50,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["offset"] = offset

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/webhooks/{webhook_id}/dead-letters".format(
            webhook_id=quote(str(webhook_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> HTTPValidationError | list[ListDeadLettersResponse200Item] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = ListDeadLettersResponse200Item.from_dict(response_200_item_data)

            response_200.append(response_200_item)

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
) -> Response[HTTPValidationError | list[ListDeadLettersResponse200Item]]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    webhook_id: str,
    *,
    client: AuthenticatedClient,
    offset: int | Unset = 0,
    limit: int | Unset = 50,
) -> Response[HTTPValidationError | list[ListDeadLettersResponse200Item]]:
    """Messages given up after their last attempt, newest first

     A page of them (`offset`, `limit`); how many there are in all is in the `X-Total-Count` header.

    Args:
        webhook_id (str): the subscription's id
        offset (int | Unset): how many of the newest to skip Default: 0.
        limit (int | Unset): how many at most Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[HTTPValidationError | list[ListDeadLettersResponse200Item]]
    """

    kwargs = _get_kwargs(
        webhook_id=webhook_id,
        offset=offset,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    webhook_id: str,
    *,
    client: AuthenticatedClient,
    offset: int | Unset = 0,
    limit: int | Unset = 50,
) -> HTTPValidationError | list[ListDeadLettersResponse200Item] | None:
    """Messages given up after their last attempt, newest first

     A page of them (`offset`, `limit`); how many there are in all is in the `X-Total-Count` header.

    Args:
        webhook_id (str): the subscription's id
        offset (int | Unset): how many of the newest to skip Default: 0.
        limit (int | Unset): how many at most Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        HTTPValidationError | list[ListDeadLettersResponse200Item]
    """

    return sync_detailed(
        webhook_id=webhook_id,
        client=client,
        offset=offset,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    webhook_id: str,
    *,
    client: AuthenticatedClient,
    offset: int | Unset = 0,
    limit: int | Unset = 50,
) -> Response[HTTPValidationError | list[ListDeadLettersResponse200Item]]:
    """Messages given up after their last attempt, newest first

     A page of them (`offset`, `limit`); how many there are in all is in the `X-Total-Count` header.

    Args:
        webhook_id (str): the subscription's id
        offset (int | Unset): how many of the newest to skip Default: 0.
        limit (int | Unset): how many at most Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[HTTPValidationError | list[ListDeadLettersResponse200Item]]
    """

    kwargs = _get_kwargs(
        webhook_id=webhook_id,
        offset=offset,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    webhook_id: str,
    *,
    client: AuthenticatedClient,
    offset: int | Unset = 0,
    limit: int | Unset = 50,
) -> HTTPValidationError | list[ListDeadLettersResponse200Item] | None:
    """Messages given up after their last attempt, newest first

     A page of them (`offset`, `limit`); how many there are in all is in the `X-Total-Count` header.

    Args:
        webhook_id (str): the subscription's id
        offset (int | Unset): how many of the newest to skip Default: 0.
        limit (int | Unset): how many at most Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        HTTPValidationError | list[ListDeadLettersResponse200Item]
    """

    return (
        await asyncio_detailed(
            webhook_id=webhook_id,
            client=client,
            offset=offset,
            limit=limit,
        )
    ).parsed
