from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.replayed import Replayed
from ...types import Response


def _get_kwargs() -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/xapi/dead-letters/replay",
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Replayed | None:
    if response.status_code == 200:
        response_200 = Replayed.from_dict(response.json())

        return response_200

    if response.status_code == 409:
        response_409 = cast(Any, None)
        return response_409

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Replayed]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
) -> Response[Any | Replayed]:
    """Send every dead letter again (admin)

     Once the cause is fixed (the LRS's address or password, what it refused): back into the outbox as
    new, with every attempt (CLASSPULSE_WEBHOOK_MAX_ATTEMPTS) again, sent as its class is now (nothing
    of a class deleted since, no emotion field of one presence-only since). Its statement keeps its id:
    one the LRS refused because it holds another under that id (409) is refused again.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Replayed]
    """

    kwargs = _get_kwargs()

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
) -> Any | Replayed | None:
    """Send every dead letter again (admin)

     Once the cause is fixed (the LRS's address or password, what it refused): back into the outbox as
    new, with every attempt (CLASSPULSE_WEBHOOK_MAX_ATTEMPTS) again, sent as its class is now (nothing
    of a class deleted since, no emotion field of one presence-only since). Its statement keeps its id:
    one the LRS refused because it holds another under that id (409) is refused again.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Replayed
    """

    return sync_detailed(
        client=client,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
) -> Response[Any | Replayed]:
    """Send every dead letter again (admin)

     Once the cause is fixed (the LRS's address or password, what it refused): back into the outbox as
    new, with every attempt (CLASSPULSE_WEBHOOK_MAX_ATTEMPTS) again, sent as its class is now (nothing
    of a class deleted since, no emotion field of one presence-only since). Its statement keeps its id:
    one the LRS refused because it holds another under that id (409) is refused again.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Replayed]
    """

    kwargs = _get_kwargs()

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
) -> Any | Replayed | None:
    """Send every dead letter again (admin)

     Once the cause is fixed (the LRS's address or password, what it refused): back into the outbox as
    new, with every attempt (CLASSPULSE_WEBHOOK_MAX_ATTEMPTS) again, sent as its class is now (nothing
    of a class deleted since, no emotion field of one presence-only since). Its statement keeps its id:
    one the LRS refused because it holds another under that id (409) is refused again.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Replayed
    """

    return (
        await asyncio_detailed(
            client=client,
        )
    ).parsed
