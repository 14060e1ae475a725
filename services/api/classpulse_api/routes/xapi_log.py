"""The xAPI export's delivery log (admin): what was sent to the LRS, retried or given up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from classpulse_api.deps import AdminKey
from classpulse_api.models import Page
from classpulse_api.outbox import Attempt
from classpulse_api.xapi import TARGET

router = APIRouter(prefix="/v1/xapi", tags=["xapi"])


@router.get("/deliveries", response_model=Page[Attempt], summary="Attempts to send statements to the LRS, newest first (admin)")
async def xapi_deliveries(
    _key: AdminKey,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[Attempt]:
    items, total = await request.app.state.outbox.attempts(TARGET, offset, limit)
    return Page(items=items, total=total, offset=offset, limit=limit)
