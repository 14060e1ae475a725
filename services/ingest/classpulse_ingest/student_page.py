"""The student page: consent in plain words first, then a webcam snapshot every few seconds, posted to
`POST /v1/classes/{class_id}/frames` with the student token from the page's address (#token=...); a pause button
stops the camera at once.

Served by ingest itself, so the page posts to its own origin (no CORS). The token travels in the URL fragment,
which browsers never send to a server, and the page removes it from the address bar as soon as it has read it.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from string import Template
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse, HTMLResponse

from classpulse_core.schemas import ClassId
from classpulse_store.registry import class_key

router = APIRouter(include_in_schema=False)

STATIC_DIR = FilePath(__file__).parent / "static"
ASSETS = {"student.js": "text/javascript", "pace.js": "text/javascript", "student.css": "text/css"}
PAGE_TEMPLATE = Template((STATIC_DIR / "student.html").read_text())
SECURITY_HEADERS = {
    # Only this page's own scripts (its pace's worker included) and styles, posting only to this origin; never framed
    # (no one can overlay the consent button); the camera for this origin only, never the microphone.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; connect-src 'self';"
        " media-src 'self' blob: mediastream:;"
        " img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=()",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/student/{class_id}", response_class=HTMLResponse)
async def student_page(request: Request, class_id: Annotated[ClassId, Path()]) -> HTMLResponse:
    if not await request.app.state.redis.exists(class_key(class_id)):
        raise HTTPException(404, f"class {class_id!r} is not open for ClassPulse: check the link with your teacher")
    settings = request.app.state.settings
    page = PAGE_TEMPLATE.substitute(
        class_id=class_id,  # the ClassId pattern allows only [A-Za-z0-9_.-]: safe in HTML as it is
        interval_ms=int(settings.student_snapshot_interval_s * 1000),
        interval_words=_every(settings.student_snapshot_interval_s),
        max_side=settings.student_snapshot_side,
    )
    return HTMLResponse(page, headers=SECURITY_HEADERS)


def _every(seconds: float) -> str:
    return "every second" if seconds == 1 else f"every {seconds:g} seconds"


@router.get("/student-assets/{name}")
async def student_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC_DIR / name, media_type=ASSETS[name], headers=SECURITY_HEADERS)
