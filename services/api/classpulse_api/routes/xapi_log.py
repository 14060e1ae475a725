"""The xAPI export's delivery log (admin): what was sent to the LRS, retried or given up; and the statements given up
(dead letters), which an admin sends again once their cause is fixed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response

from classpulse_api.deps import AdminKey, LogLimitParam, LogOffsetParam
from classpulse_api.models import TOTAL_COUNT, TOTAL_COUNT_RESPONSE, Page, Replayed
from classpulse_api.outbox import Attempt, DeadLetter, Outbox
from classpulse_api.xapi import TARGET

router = APIRouter(prefix="/v1/xapi", tags=["xapi"])

MessageIdParam = Annotated[str, Path(max_length=200, description="the dead letter's `message.message_id`")]
REPLAY = (
    "Once the cause is fixed (the LRS's address or password, what it refused): back into the outbox as new, with every"
    " attempt (CLASSPULSE_WEBHOOK_MAX_ATTEMPTS) again, sent as its class is now (nothing of a class deleted since, no"
    " emotion field of one presence-only since). Its statement keeps its id: one the LRS refused because it holds"
    " another under that id (409) is refused again."
)
EXPORT_OFF = "the xAPI export is off (no CLASSPULSE_XAPI_ENDPOINT): nothing would send a replayed statement, the dead letters are kept"


@router.get("/deliveries", response_model=Page[Attempt], summary="Attempts to send statements to the LRS, newest first (admin)")
async def xapi_deliveries(_key: AdminKey, request: Request, offset: LogOffsetParam = 0, limit: LogLimitParam = 50) -> Page[Attempt]:
    items, total = await request.app.state.outbox.attempts(TARGET, offset, limit)
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get(
    "/dead-letters", response_model=list[DeadLetter],
    summary="Statements given up after their last attempt, newest first, with that attempt: why (admin)",
    description=f"A page of them (`offset`, `limit`); how many there are in all is in the `{TOTAL_COUNT}` header.",
    responses=TOTAL_COUNT_RESPONSE,
)
async def xapi_dead_letters(
    _key: AdminKey, request: Request, response: Response, offset: LogOffsetParam = 0, limit: LogLimitParam = 50
) -> list[DeadLetter]:
    outbox: Outbox = request.app.state.outbox
    letters, total = await outbox.dead_letters(TARGET, offset, limit)
    response.headers[TOTAL_COUNT] = str(total)
    return [DeadLetter.model_validate(letter) for letter in letters]


def _replaying_outbox(request: Request) -> Outbox:
    """The outbox, once the export is on: with it off the delivery drops every xAPI message (nothing to send it to),
    so a dead letter replayed then would be lost for good."""
    if request.app.state.settings.xapi_endpoint is None:
        raise HTTPException(409, EXPORT_OFF)
    outbox: Outbox = request.app.state.outbox
    return outbox


@router.post(
    "/dead-letters/replay", response_model=Replayed, summary="Send every dead letter again (admin)", description=REPLAY,
    responses={409: {"description": EXPORT_OFF}},
)
async def replay_xapi_dead_letters(_key: AdminKey, request: Request) -> Replayed:
    return Replayed(replayed=await _replaying_outbox(request).replay(TARGET))


@router.post(
    "/dead-letters/{message_id}/replay", response_model=Replayed, summary="Send one dead letter again (admin)",
    description=REPLAY, responses={404: {"description": "no dead letter of that message id"}, 409: {"description": EXPORT_OFF}},
)
async def replay_xapi_dead_letter(message_id: MessageIdParam, _key: AdminKey, request: Request) -> Replayed:
    replayed = await _replaying_outbox(request).replay(TARGET, message_id)
    if not replayed:
        raise HTTPException(404, f"no dead letter {message_id!r}")
    return Replayed(replayed=replayed)
