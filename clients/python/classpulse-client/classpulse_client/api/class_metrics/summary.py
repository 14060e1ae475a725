from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.class_summary import ClassSummary
from ...models.http_validation_error import HTTPValidationError
from ...types import UNSET, Response, Unset


def _get_kwargs(
    class_id: str,
    *,
    session: None | str | Unset = UNSET,
    phases: int | Unset = 4,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_session: None | str | Unset
    if isinstance(session, Unset):
        json_session = UNSET
    else:
        json_session = session
    params["session"] = json_session

    params["phases"] = phases

    json_from_: None | str | Unset
    if isinstance(from_, Unset):
        json_from_ = UNSET
    else:
        json_from_ = from_
    params["from"] = json_from_

    json_to: None | str | Unset
    if isinstance(to, Unset):
        json_to = UNSET
    else:
        json_to = to
    params["to"] = json_to

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/classes/{class_id}/summary".format(
            class_id=quote(str(class_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ClassSummary | HTTPValidationError | None:
    if response.status_code == 200:
        response_200 = ClassSummary.from_dict(response.json())

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
) -> Response[ClassSummary | HTTPValidationError]:
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
    session: None | str | Unset = UNSET,
    phases: int | Unset = 4,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
) -> Response[ClassSummary | HTTPValidationError]:
    """Totals, indices, phases and peaks over a range or session

    Args:
        class_id (str): the class's id
        session (None | str | Unset): a session id: its time range
        phases (int | Unset): parts the range is cut in for its arc Default: 4.
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassSummary | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        class_id=class_id,
        session=session,
        phases=phases,
        from_=from_,
        to=to,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    class_id: str,
    *,
    client: AuthenticatedClient,
    session: None | str | Unset = UNSET,
    phases: int | Unset = 4,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
) -> ClassSummary | HTTPValidationError | None:
    """Totals, indices, phases and peaks over a range or session

    Args:
        class_id (str): the class's id
        session (None | str | Unset): a session id: its time range
        phases (int | Unset): parts the range is cut in for its arc Default: 4.
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassSummary | HTTPValidationError
    """

    return sync_detailed(
        class_id=class_id,
        client=client,
        session=session,
        phases=phases,
        from_=from_,
        to=to,
    ).parsed


async def asyncio_detailed(
    class_id: str,
    *,
    client: AuthenticatedClient,
    session: None | str | Unset = UNSET,
    phases: int | Unset = 4,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
) -> Response[ClassSummary | HTTPValidationError]:
    """Totals, indices, phases and peaks over a range or session

    Args:
        class_id (str): the class's id
        session (None | str | Unset): a session id: its time range
        phases (int | Unset): parts the range is cut in for its arc Default: 4.
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassSummary | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        class_id=class_id,
        session=session,
        phases=phases,
        from_=from_,
        to=to,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    class_id: str,
    *,
    client: AuthenticatedClient,
    session: None | str | Unset = UNSET,
    phases: int | Unset = 4,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
) -> ClassSummary | HTTPValidationError | None:
    """Totals, indices, phases and peaks over a range or session

    Args:
        class_id (str): the class's id
        session (None | str | Unset): a session id: its time range
        phases (int | Unset): parts the range is cut in for its arc Default: 4.
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassSummary | HTTPValidationError
    """

    return (
        await asyncio_detailed(
            class_id=class_id,
            client=client,
            session=session,
            phases=phases,
            from_=from_,
            to=to,
        )
    ).parsed
