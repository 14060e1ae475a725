"""The teacher dashboard: one static page and its assets (static/dashboard/), served with strict security headers.

The page holds no secret and no data: it asks the teacher for an API key, keeps it in the tab's sessionStorage and
calls the /v1 routes with it like any other client. So these routes need no key, and they stay out of the OpenAPI
schema, which documents the API itself.

`/dashboard/embed#token=<viewer token>` is the same page opened by a platform (classpulse_api.embed). The token rides
in the fragment, which a browser sends to no server (nor in a Referer), so no access log or proxy sees it: a small
page takes it from there, drops it from the address and posts it (`POST /dashboard/embed`, form field `token`). That
exchanges it, once, for a viewer key handed to the dashboard page in a meta tag (the page keeps it in memory only); a
refused token gets a page that says why, with the API's status (401 or 403). The dashboard may be framed by the
issuer's registered origins only. A token in the query (`?token=`), where every log on its way keeps it, is refused.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from redis.exceptions import RedisError

from classpulse_api.embed import EmbedIssuer, EmbedRefused, ViewerSession

router = APIRouter(tags=["dashboard"], include_in_schema=False)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "static" / "dashboard"
PAGE = "index.html"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

ASSETS = {path.name: path for path in ASSETS_DIR.iterdir() if path.suffix in MEDIA_TYPES and path.name != PAGE}
"""Only the files shipped beside the page, by exact name: a request can never reach outside the folder."""


def security_headers(frame_origins: tuple[str, ...] = (), form_action: str = "'none'") -> dict[str, str]:
    """Scripts, styles and calls only from this origin, no inline script or style; inside no other site's frame but
    the given origins' (an embedding platform's, `*`: any site's); forms posted only to `form_action`."""
    ancestors = " ".join(frame_origins) if frame_origins else "'none'"
    headers = {
        "Content-Security-Policy": "; ".join(
            (
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self'",
                "connect-src 'self'",
                "base-uri 'none'",
                f"form-action {form_action}",
                f"frame-ancestors {ancestors}",
            )
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        # Revalidate every time: a new release's page and scripts are never mixed with cached old ones.
        "Cache-Control": "no-cache",
    }
    if not frame_origins:
        headers["X-Frame-Options"] = "DENY"  # for browsers older than frame-ancestors
    return headers


SECURITY_HEADERS = security_headers()
EMBED_OPENING_HEADERS = {
    # Framed by any site: the issuer, and so the origins that may frame its dashboard, is known only once the token is
    # posted, and this page shows nothing and offers nothing to click; the dashboard it posts to keeps to the issuer's.
    **security_headers(("*",), form_action="'self'"),
    "Cache-Control": "no-store",
}
EMBED_OPENING_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="no-referrer">
  <title>ClassPulse \u00b7 opening the dashboard</title>
  <link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/dashboard/style.css">
  <script type="module" src="/dashboard/embed.js"></script>
</head>
<body>
  <form id="token-exchange" method="post" action="/dashboard/embed"><input type="hidden" name="token"></form>
  <p class="notice">Opening the dashboard\u2026</p>
</body>
</html>
"""
REFUSAL_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>ClassPulse \u00b7 dashboard not available</title>
  <link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/dashboard/style.css">
</head>
<body>
  <section id="embed-refused" class="key-panel" data-status="{status}">
    <h1>This dashboard cannot be shown</h1>
    <p id="embed-reason" class="key-error" role="alert">{reason}</p>
    <p>Open it again from your learning platform: it gives a new link each time.</p>
  </section>
</body>
</html>
"""


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/dashboard")
async def dashboard_page() -> FileResponse:
    return _file(ASSETS_DIR / PAGE)


@router.get("/dashboard/embed")
async def embedded_dashboard_opening(request: Request, token: str | None = None) -> HTMLResponse:
    if token is not None:
        # Spent, not only refused: the logs on its way keep it, and a token read there must open nothing.
        issuer: EmbedIssuer | None = None
        with contextlib.suppress(RedisError):  # Redis down: refused all the same (it expires within 15 minutes)
            issuer = await request.app.state.viewer_tokens.spend(token)
        # Framed as the issuer's dashboard would be: a platform not yet moved to the fragment sees why in its frame.
        return refusal_page(
            400, "the viewer token was given in the address's query (?token=), which servers and proxies log: the platform"
            " must put it in the fragment (#token=) instead; this one is now used",
            frame_origins(issuer.frame_origins if issuer else []),
        )
    return HTMLResponse(EMBED_OPENING_PAGE, headers=EMBED_OPENING_HEADERS)


@router.post("/dashboard/embed")
async def embedded_dashboard(request: Request, token: Annotated[str, Form()] = "") -> HTMLResponse:
    state = request.app.state
    issuer: EmbedIssuer | None = None
    try:
        if not token:
            raise EmbedRefused(401, "this address holds no viewer token (it can be used once, from the platform)")
        session, issuer = await state.viewer_tokens.exchange(token, state.classes.get)
    except EmbedRefused as refusal:
        return refusal_page(refusal.status, refusal.message, frame_origins(refusal.issuer.frame_origins if refusal.issuer else []))
    return session_page(session, frame_origins(issuer.frame_origins))


def session_page(session: ViewerSession, frames: tuple[str, ...]) -> HTMLResponse:
    """The dashboard opened on one class with a short-lived key (an embedding platform's, an LTI launch's)."""
    page = (ASSETS_DIR / PAGE).read_text().replace(
        "<head>", f'<head>\n  <meta name="classpulse-viewer" content="{html.escape(session.model_dump_json())}">', 1
    )
    # no-store: the page carries a key.
    return HTMLResponse(page, headers={**security_headers(frames), "Cache-Control": "no-store"})


def refusal_page(status: int, reason: str, frames: tuple[str, ...] = ()) -> HTMLResponse:
    page = REFUSAL_PAGE.format(status=status, reason=html.escape(reason))
    return HTMLResponse(page, status_code=status, headers={**security_headers(frames), "Cache-Control": "no-store"})


def frame_origins(origins: Iterable[object]) -> tuple[str, ...]:
    # HttpUrl renders an origin with a trailing slash, which frame-ancestors does not match.
    return tuple(str(origin).rstrip("/") for origin in origins)


@router.get("/dashboard/{asset}")
async def dashboard_asset(asset: str) -> FileResponse:
    path = ASSETS.get(asset)
    if path is None:
        raise HTTPException(404, f"no dashboard file {asset!r}")
    return _file(path)
