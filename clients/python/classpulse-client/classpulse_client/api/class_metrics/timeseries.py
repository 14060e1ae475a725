from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.class_timeseries import ClassTimeseries
from ...models.http_validation_error import HTTPValidationError
from ...types import UNSET, Response, Unset


def _get_kwargs(
    class_id: str,
    *,
    bucket: str | Unset = "10s",
    metrics: None | str | Unset = UNSET,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
    session: None | str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["bucket"] = bucket

    json_metrics: None | str | Unset
    if isinstance(metrics, Unset):
        json_metrics = UNSET
    else:
        json_metrics = metrics
    params["metrics"] = json_metrics

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

    json_session: None | str | Unset
    if isinstance(session, Unset):
        json_session = UNSET
    else:
        json_session = session
    params["session"] = json_session

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/classes/{class_id}/timeseries".format(
            class_id=quote(str(class_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ClassTimeseries | HTTPValidationError | None:
    if response.status_code == 200:
        response_200 = ClassTimeseries.from_dict(response.json())

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
) -> Response[ClassTimeseries | HTTPValidationError]:
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
    bucket: str | Unset = "10s",
    metrics: None | str | Unset = UNSET,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
    session: None | str | Unset = UNSET,
) -> Response[ClassTimeseries | HTTPValidationError]:
    """Metrics and indices in time buckets

    Args:
        class_id (str): the class's id
        bucket (str | Unset): bucket width, whole seconds: 1s, 10s, 1m, 1h; widened where only
            coarser series hold the range Default: '10s'.
        metrics (None | str | Unset): comma-separated metrics to return, of: frames, faces,
            faces_per_frame, on_camera, presence, facing_screen, classified_faces, classified_share,
            emotions, emotions_raw, dominant_emotion, mood_index, attention_risk; default all
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now
        session (None | str | Unset): a session id: its time range

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassTimeseries | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        class_id=class_id,
        bucket=bucket,
        metrics=metrics,
        from_=from_,
        to=to,
        session=session,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    class_id: str,
    *,
    client: AuthenticatedClient,
    bucket: str | Unset = "10s",
    metrics: None | str | Unset = UNSET,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
    session: None | str | Unset = UNSET,
) -> ClassTimeseries | HTTPValidationError | None:
    """Metrics and indices in time buckets

    Args:
        class_id (str): the class's id
        bucket (str | Unset): bucket width, whole seconds: 1s, 10s, 1m, 1h; widened where only
            coarser series hold the range Default: '10s'.
        metrics (None | str | Unset): comma-separated metrics to return, of: frames, faces,
            faces_per_frame, on_camera, presence, facing_screen, classified_faces, classified_share,
            emotions, emotions_raw, dominant_emotion, mood_index, attention_risk; default all
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now
        session (None | str | Unset): a session id: its time range

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassTimeseries | HTTPValidationError
    """

    return sync_detailed(
        class_id=class_id,
        client=client,
        bucket=bucket,
        metrics=metrics,
        from_=from_,
        to=to,
        session=session,
    ).parsed


async def asyncio_detailed(
    class_id: str,
    *,
    client: AuthenticatedClient,
    bucket: str | Unset = "10s",
    metrics: None | str | Unset = UNSET,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
    session: None | str | Unset = UNSET,
) -> Response[ClassTimeseries | HTTPValidationError]:
    """Metrics and indices in time buckets

    Args:
        class_id (str): the class's id
        bucket (str | Unset): bucket width, whole seconds: 1s, 10s, 1m, 1h; widened where only
            coarser series hold the range Default: '10s'.
        metrics (None | str | Unset): comma-separated metrics to return, of: frames, faces,
            faces_per_frame, on_camera, presence, facing_screen, classified_faces, classified_share,
            emotions, emotions_raw, dominant_emotion, mood_index, attention_risk; default all
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now
        session (None | str | Unset): a session id: its time range

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ClassTimeseries | HTTPValidationError]
    """

    kwargs = _get_kwargs(
        class_id=class_id,
        bucket=bucket,
        metrics=metrics,
        from_=from_,
        to=to,
        session=session,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    class_id: str,
    *,
    client: AuthenticatedClient,
    bucket: str | Unset = "10s",
    metrics: None | str | Unset = UNSET,
    from_: None | str | Unset = UNSET,
    to: None | str | Unset = UNSET,
    session: None | str | Unset = UNSET,
) -> ClassTimeseries | HTTPValidationError | None:
    """Metrics and indices in time buckets

    Args:
        class_id (str): the class's id
        bucket (str | Unset): bucket width, whole seconds: 1s, 10s, 1m, 1h; widened where only
            coarser series hold the range Default: '10s'.
        metrics (None | str | Unset): comma-separated metrics to return, of: frames, faces,
            faces_per_frame, on_camera, presence, facing_screen, classified_faces, classified_share,
            emotions, emotions_raw, dominant_emotion, mood_index, attention_risk; default all
        from_ (None | str | Unset): ISO 8601 or epoch ms; default: the class's registration
        to (None | str | Unset): ISO 8601 or epoch ms; default: now
        session (None | str | Unset): a session id: its time range

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ClassTimeseries | HTTPValidationError
    """

    return (
        await asyncio_detailed(
            class_id=class_id,
            client=client,
            bucket=bucket,
            metrics=metrics,
            from_=from_,
            to=to,
            session=session,
        )
    ).parsed
