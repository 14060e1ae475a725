"""LTI 1.3 routes (classpulse_api.lti): the tool's endpoints a platform calls (`/lti/login`, `/lti/launch`,
`/lti/jwks`) and the admin's routes that register platforms and rotate the tool's keys (`/v1/lti/...`).

A refused login or launch gets the dashboard's refusal page with its status and reason, is counted
(`classpulse_lti_launches_total{outcome="refused", reason=...}`) and logged with the same reason.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, HTTPException, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from prometheus_client import Counter
from pydantic import Field

from classpulse_api.deps import AdminKey
from classpulse_api.embed import ViewerSession
from classpulse_api.lti import (
    DEEP_LINKING_REQUEST,
    STATE_COOKIE_PREFIX,
    STATE_COOKIE_VALUE,
    Launch,
    LtiPlatform,
    LtiPlatformOut,
    LtiRefused,
    ToolKeyOut,
    deep_linking_response,
    state_cookie_name,
)
from classpulse_api.routes.dashboard import frame_origins, refusal_page, security_headers, session_page
from classpulse_api.store import ClassStore
from classpulse_store.registry import ClassRecord
from classpulse_web.auth import Role

log = logging.getLogger(__name__)

LAUNCHES = Counter(
    "classpulse_lti_launches_total", "LTI logins and launches: opened (by role and message) or refused (by reason)",
    ["outcome", "reason"],
)

tool = APIRouter(tags=["lti"], include_in_schema=False)
"""What the platform and the browser call: not part of the documented REST API (forms and redirects)."""
admin = APIRouter(prefix="/v1/lti", tags=["lti"])
router = APIRouter()

# The store finds a registration by a key pattern: a glob character (`*`) in the id named every registration.
PlatformIdParam = Annotated[str, Path(description="the registration's platform_id", pattern=r"^[0-9a-f]{16}$")]


class LaunchSession(ViewerSession):
    can_run_lessons: bool = Field(description="the key may also start and end the class's lessons (an Instructor's)")


def lti_teacher(class_id: str) -> str:
    """The teacher id of a class an LTI launch registered: its own, so an Instructor's key reads that class only."""
    return f"lti:{class_id}"


def _public_url(request: Request) -> str:
    public_url: str = request.app.state.settings.public_url
    return public_url.rstrip("/")


def _refused(refusal: LtiRefused, stage: str, **fields: object) -> HTMLResponse:
    LAUNCHES.labels("refused", refusal.reason).inc()
    log.warning("lti %s refused", stage, extra={"reason": refusal.reason, "status": refusal.status, "detail": refusal.message, **fields})
    page = refusal_page(refusal.status, refusal.message)
    if refusal.retry_after_s is not None:
        page.headers["Retry-After"] = str(refusal.retry_after_s)
    return page


@tool.api_route("/lti/login", methods=["GET", "POST"])
async def lti_login(request: Request) -> Response:
    """OIDC login initiation (LTI 1.3 core 5.1.1): the parameters come in the query (GET) or a form (POST)."""
    params = dict(request.query_params) if request.method == "GET" else {k: str(v) for k, v in (await request.form()).items()}
    issuer, login_hint = params.get("iss", ""), params.get("login_hint", "")
    try:
        if not issuer or not login_hint or not params.get("target_link_uri"):
            raise LtiRefused(400, "bad_login", "an LTI login needs iss, login_hint and target_link_uri")
        platform = await request.app.state.lti_platforms.find(issuer, params.get("client_id"))
        if platform is None:
            raise LtiRefused(
                400, "unknown_platform",
                f"the platform {issuer!r} (client id {params.get('client_id')!r}) is not registered with ClassPulse:"
                " an admin registers it first (docs/integrations.md)",
            )
        deployment = params.get("lti_deployment_id")
        if deployment is not None and deployment not in platform.deployment_ids:
            raise LtiRefused(403, "unknown_deployment", f"the deployment {deployment!r} is not registered for {issuer!r}")
        state, nonce = await request.app.state.lti_states.start(platform.issuer, platform.client_id)
    except LtiRefused as refusal:
        return _refused(refusal, "login", issuer=issuer)
    query = {
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
        "client_id": platform.client_id, "redirect_uri": f"{_public_url(request)}/lti/launch",
        "login_hint": login_hint, "state": state, "nonce": nonce,
    }
    if "lti_message_hint" in params:
        query["lti_message_hint"] = params["lti_message_hint"]
    redirect = RedirectResponse(f"{platform.auth_login_url}{'&' if platform.auth_login_url.query else '?'}{urlencode(query)}", 302)
    _set_state_cookie(request, redirect, state)
    return redirect


def _set_state_cookie(request: Request, response: Response, state: str) -> None:
    """The browser that starts a login must be the one that launches. The platform posts the launch from its own site:
    over HTTPS the cookie is SameSite=None; Secure so that it comes with that cross-site post; over plain HTTP
    (a localhost development setup) browsers refuse SameSite=None without Secure, so it is Lax, which only works
    when platform and tool share a site (e.g. both on localhost, whatever their ports)."""
    max_age = request.app.state.settings.lti_state_ttl_s
    response.set_cookie(state_cookie_name(state), STATE_COOKIE_VALUE, max_age=max_age, **_cookie_flags(request))


def _started_here(request: Request, state: str) -> bool:
    """Whether the browser holds the cookie of the login that gave `state`: named by its digest, or (a login begun by
    an API before this one, during a rollout) by the state itself, holding it."""
    legacy = STATE_COOKIE_PREFIX + state
    return request.cookies.get(state_cookie_name(state)) == STATE_COOKIE_VALUE or request.cookies.get(legacy) == state


def _cookie_flags(request: Request) -> dict[str, Any]:
    """The state cookie's attributes, the same to set and to delete it (a browser keeps a Secure cookie that a
    deletion without Secure names)."""
    secure = request.app.state.settings.public_url.startswith("https://")
    return {"path": "/lti/", "httponly": True, "secure": secure, "samesite": "none" if secure else "lax"}


@tool.post("/lti/launch")
async def lti_launch(request: Request, id_token: Annotated[str, Form()] = "", state: Annotated[str, Form()] = "") -> Response:
    """The platform's signed launch (form_post): an Instructor gets the dashboard, a Learner the student page, a Deep
    Linking request a link to place in the course."""
    app = request.app.state
    launch: Launch | None = None
    response: Response
    try:
        launch = await app.lti_verifier.verify(id_token, state, _started_here(request, state))
        if launch.message_type == DEEP_LINKING_REQUEST:
            response = await _deep_link(request, launch)
            outcome = "deep_link"
        else:
            response, outcome = await _open_class(request, launch)
    except LtiRefused as refusal:
        return _refused(refusal, "launch", issuer=launch.platform.issuer if launch else None)
    response.delete_cookie(state_cookie_name(state), **_cookie_flags(request))
    if STATE_COOKIE_PREFIX + state in request.cookies:
        response.delete_cookie(STATE_COOKIE_PREFIX + state, **_cookie_flags(request))
    LAUNCHES.labels("opened", outcome).inc()
    log.info("lti launch opened", extra={
        "outcome": outcome, "issuer": launch.platform.issuer, "deployment_id": launch.deployment_id,
        "class_id": None if outcome == "deep_link" else launch.class_id(),
    })
    return response


async def _open_class(request: Request, launch: Launch) -> tuple[Response, str]:
    role = launch.role
    if role is None:
        raise LtiRefused(403, "role", "ClassPulse opens for a course's Instructors (the dashboard) and Learners (the student page)")
    record = await _course_class(request, launch)
    app, settings = request.app.state, request.app.state.settings
    if role == "learner":
        _key, presented = await app.keys.create(
            Role.STUDENT, "lti learner", class_id=record.class_id, ttl_s=settings.lti_session_ttl_s, camera_kind="personal"
        )
        # The token in the fragment, as the student page expects it (never sent to a server; the page removes it).
        student_page = f"{settings.student_page_url.rstrip('/')}/student/{record.class_id}#token={presented}"
        if request.headers.get("sec-fetch-dest") in ("iframe", "frame"):
            return _open_in_own_window(student_page, launch), "learner"
        return RedirectResponse(student_page, 303), "learner"
    # An Instructor: a key of the class's own teacher id runs its lessons; were the class given to another teacher
    # since, a read-only viewer key (that teacher's key would read all of their classes).
    runs_lessons = record.teacher == lti_teacher(record.class_id)
    key, presented = await app.keys.create(
        Role.TEACHER if runs_lessons else Role.VIEWER, "lti instructor",
        teacher_id=record.teacher if runs_lessons else None, class_id=None if runs_lessons else record.class_id,
        ttl_s=settings.lti_session_ttl_s,
    )
    session = LaunchSession(
        api_key=presented, class_id=record.class_id, issuer=launch.platform.issuer, expires_at_ms=key.expires_at_ms,
        can_run_lessons=runs_lessons,
    )
    return session_page(session, frame_origins(launch.platform.frame_origins)), "instructor"


async def _course_class(request: Request, launch: Launch) -> ClassRecord:
    """The course's class, registered on its first launch; its size from the platform's roster, read after that
    launch and after every Instructor's launch (a roster changes over a term)."""
    app = request.app.state
    class_id = launch.class_id()
    record: ClassRecord | None = await app.classes.get(class_id)
    created = False
    if record is None:
        title = launch.context.get("title") or launch.context.get("label") or ""
        created = await app.classes.create(
            ClassRecord(class_id=class_id, name=str(title)[:200], teacher=lti_teacher(class_id))
        )
        record = await app.classes.get(class_id)
        if created:
            log.info("lti class registered", extra={"class_id": class_id, "issuer": launch.platform.issuer})
    if created or launch.role == "instructor":
        classes: ClassStore = app.classes

        async def keep_size(learners: int) -> None:
            # The size alone, and only while the class exists: a change or a deletion made meanwhile stands.
            await classes.update(class_id, {"expected_students": min(learners, 10_000)})

        app.lti_roster_reads.read(launch, keep_size)
    return record


PANEL_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="no-referrer">
  <title>ClassPulse \u00b7 {title}</title>
  <link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/dashboard/style.css">
</head>
<body>
{panel}
</body>
</html>
"""
"""A launch's own page (one panel, no script): `title` and `panel` are HTML."""
DEEP_LINK_PANEL = """  <section id="deep-link" class="key-panel">
    <h1>Add ClassPulse to this course</h1>
    <p>Teachers will open the class's live dashboard from this link; students, the page that asks for their consent
    before any photo is taken.</p>
    <form id="deep-link-form" method="post" action="{return_url}">
      <input type="hidden" name="JWT" value="{jwt}">
      <button id="deep-link-add" type="submit">Add ClassPulse</button>
    </form>
  </section>"""
LEARNER_PANEL = """  <section id="learner-open" class="key-panel">
    <h1>ClassPulse opens in its own window</h1>
    <p>Inside this page ClassPulse cannot use your camera. Open it in a new window: it asks for your consent before any
    photo is taken, and you can pause or stop it there at any time.</p>
    <p><a id="learner-open-link" class="button" href="{student_page}" target="_blank" rel="noopener noreferrer">Open ClassPulse</a></p>
  </section>"""


def _launch_page(launch: Launch, title: str, panel: str, form_action: str = "'none'") -> HTMLResponse:
    """A launch's own page, framed as the platform's registration allows; no-store: it carries a key or a signed
    response."""
    headers = {**security_headers(frame_origins(launch.platform.frame_origins), form_action), "Cache-Control": "no-store"}
    return HTMLResponse(PANEL_PAGE.format(title=title, panel=panel), headers=headers)


def _open_in_own_window(student_page: str, launch: Launch) -> HTMLResponse:
    """A Learner's launch inside the platform's frame: the student page may not be framed (nor ask for the camera
    there), so the frame offers it in a new window (the link carries the Learner's key)."""
    return _launch_page(launch, "open the student page", LEARNER_PANEL.format(student_page=html.escape(student_page)))


async def _deep_link(request: Request, launch: Launch) -> HTMLResponse:
    if launch.role != "instructor":
        raise LtiRefused(403, "role", "only a course's Instructors place ClassPulse in it")
    return_url, signed = await deep_linking_response(launch, request.app.state.lti_tool_keys, f"{_public_url(request)}/lti/launch")
    parts = urlsplit(return_url)
    panel = DEEP_LINK_PANEL.format(return_url=html.escape(return_url), jwt=html.escape(signed))
    # The page's one form posts to the platform's return URL: only that origin is allowed as a form target.
    return _launch_page(launch, "add to the course", panel, form_action=f"{parts.scheme}://{parts.netloc}")


@tool.get("/lti/jwks")
async def lti_jwks(request: Request) -> JSONResponse:
    """The tool's public keys: platforms verify its client assertions and deep linking responses with them."""
    return JSONResponse(await request.app.state.lti_tool_keys.jwks(), headers={"Cache-Control": "max-age=300"})


@admin.post("/platforms", status_code=201, response_model=LtiPlatformOut, summary="Register an LTI 1.3 platform (admin)")
async def register_lti_platform(body: LtiPlatform, _key: AdminKey, request: Request) -> LtiPlatformOut:
    registered: LtiPlatformOut = await request.app.state.lti_platforms.register(body)
    return registered


@admin.get("/platforms", response_model=list[LtiPlatformOut], summary="Registered LTI platforms (admin)")
async def list_lti_platforms(_key: AdminKey, request: Request) -> list[LtiPlatformOut]:
    platforms: list[LtiPlatformOut] = await request.app.state.lti_platforms.list()
    return platforms


@admin.delete("/platforms/{platform_id}", status_code=204, summary="Remove an LTI platform: its launches stop (admin)")
async def delete_lti_platform(platform_id: PlatformIdParam, _key: AdminKey, request: Request) -> Response:
    if not await request.app.state.lti_platforms.delete(platform_id):
        raise HTTPException(404, f"no LTI platform {platform_id!r}")
    return Response(status_code=204)


@admin.get("/keys", response_model=list[ToolKeyOut], summary="The tool's signing keys, published at /lti/jwks (admin)")
async def list_lti_keys(_key: AdminKey, request: Request) -> list[ToolKeyOut]:
    keys: list[ToolKeyOut] = await request.app.state.lti_tool_keys.list()
    return keys


@admin.post("/keys", status_code=201, response_model=ToolKeyOut, summary="Rotate: a new signing key, the old ones still published (admin)")
async def rotate_lti_key(_key: AdminKey, request: Request) -> ToolKeyOut:
    rotated: ToolKeyOut = await request.app.state.lti_tool_keys.rotate()
    return rotated


@admin.delete("/keys/{kid}", status_code=204, summary="Stop publishing a retired key (admin)")
async def retire_lti_key(kid: Annotated[str, Path(description="the key's kid")], _key: AdminKey, request: Request) -> Response:
    outcome = await request.app.state.lti_tool_keys.retire(kid)
    if outcome == "current":
        raise HTTPException(409, "this is the key the tool signs with: rotate first, then retire it")
    if outcome == "unknown":
        raise HTTPException(404, f"no tool key {kid!r}")
    return Response(status_code=204)


router.include_router(tool)
router.include_router(admin)
