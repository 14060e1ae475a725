"""A learning platform's LTI 1.3 side, as `lti1p3platform` implements it, for test_lti_launch.py (run by the Python of
.cache/lti-platform-venv, requirements-lti-platform.txt):

    python lti_platform.py <port> <tool base URL> <client id> <deployment id>

lti1p3platform signs the id_token (its RSA key, published at /jwks), builds the launch message (user, roles, context,
Names and Role Provisioning and Deep Linking claims), answers the tool's client-credentials grant (verifying the
tool's assertion against the tool's JWKS URL), verifies access tokens and Deep Linking responses. What a platform adds
around it is here: a course page that starts a launch (/start) or shows it in a frame (/course), its roster (/memberships/<course>, in pages as large
and answered as slowly as the test sets them), and the page
that receives placed links (/deep-link-return, listed at /deep-links); /jwks counts its fetches (/jwks/fetches) and
is taken down and up by the test (PUT /jwks/down).
"""

from __future__ import annotations

import asyncio
import html
import json
import sys
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from lti1p3platform.framework.fastapi.message_launch import FastapiMessageLaunch
from lti1p3platform.framework.fastapi.oidc_login import FastAPIOIDCLogin
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.registration import Registration

port, tool, client_id, deployment_id = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
ISSUER = f"http://127.0.0.1:{port}"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ROLES = {
    "Instructor": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "Learner": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
}
_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = _private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
PUBLIC_PEM = _private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

rosters: dict[str, dict[str, Any]] = {}
"""Course id -> {"members", "page_size", "page_delay_s"}, as the test sets them (PUT /memberships/<course>)."""
placed: list[dict[str, Any]] = []
"""Content items the tool placed through Deep Linking."""
keyset = {"fetches": 0, "down": False}
"""How often /jwks was asked for, and whether it answers (the test takes it down: PUT /jwks/down)."""


class Platform(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **_kwargs: Any) -> None:
        self._registration = self.get_registration_by_params()

    def get_registration_by_params(self, **_kwargs: Any) -> Registration:
        return (
            Registration()
            .set_iss(ISSUER)
            .set_client_id(client_id)
            .set_deployment_id(deployment_id)
            .set_launch_url(f"{tool}/lti/launch")
            .set_deeplink_launch_url(f"{tool}/lti/launch")
            .set_oidc_login_url(f"{tool}/lti/login")
            .set_tool_key_set_url(f"{tool}/lti/jwks")
            .set_platform_public_key(PUBLIC_PEM)
            .set_platform_private_key(PRIVATE_PEM)
        )


class Login(FastAPIOIDCLogin):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = json.dumps(kwargs)


class Launch(FastapiMessageLaunch, LTIAdvantageMessageLaunchAbstract):
    def prepare_launch(self, preflight_response: dict[str, Any], **_kwargs: Any) -> None:
        hint = json.loads(preflight_response["lti_message_hint"])
        if preflight_response.get("login_hint") != hint["user"]:
            raise HTTPException(403, "login_hint is not the user who started the launch")
        self.set_user_data(hint["user"], [ROLES[hint["role"]]], full_name=f"{hint['role']} {hint['user']}")
        self.set_launch_context_claim(hint["course"], context_title=hint["title"], context_types=["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"])
        self.set_resource_link_claim(f"link-{hint['course']}", title="ClassPulse")
        self.set_nrps(f"{ISSUER}/memberships/{hint['course']}")
        if hint["deep_link"]:
            self.set_dl(f"{ISSUER}/deep-link-return", title="Add a tool", accept_types={"ltiResourceLink"}, extra_data={"slot": "week-1"})
        self.set_id_token_expiration(hint["expires_in"])


app = FastAPI()


@app.get("/jwks")
def jwks() -> JSONResponse:
    keyset["fetches"] += 1
    if keyset["down"]:
        raise HTTPException(503, "the keyset is not available")
    return JSONResponse(Platform().get_jwks())


@app.put("/jwks/down")
async def jwks_down(request: Request) -> dict:
    keyset["down"] = bool(await request.json())
    return keyset


@app.get("/jwks/fetches")
def jwks_fetches() -> int:
    return keyset["fetches"]


@app.get("/start")
def start(request: Request, user: str, role: str, course: str, title: str = "Course", deep_link: bool = False, expires_in: int = 300):
    """The course page's link to the tool: the OIDC login initiation, by redirect to the tool's login URL."""
    login = Login(request, Platform())
    login.set_lti_message_hint(user=user, role=role, course=course, title=title, deep_link=deep_link, expires_in=expires_in)
    return login.initiate_login(user)


@app.get("/course")
def course(launch: str) -> HTMLResponse:
    """A course page that shows the tool inside it, as platforms do: `launch` (a /start address) in a frame."""
    return HTMLResponse(f'<!doctype html><link rel="icon" href="data:,"><h1>Course</h1><iframe src="{html.escape(launch)}" width="1000" height="600"></iframe>')


@app.get("/authorize")
def authorize(request: Request):
    """The platform's OIDC authorization endpoint: lti1p3platform checks the tool's request and posts the id_token."""
    return Launch(request, Platform()).lti_launch()


@app.post("/token")
async def token(request: Request) -> JSONResponse:
    form = dict((await request.form()).items())
    return JSONResponse(Platform().get_access_token(form))


@app.put("/memberships/{course}")
async def set_roster(course: str, request: Request) -> dict:
    body = await request.json()
    rosters[course] = {"members": body["members"], "page_size": body.get("page_size", 100), "page_delay_s": body.get("page_delay_s", 0)}
    return {"members": len(body["members"])}


@app.get("/memberships/{course}")
async def memberships(course: str, page: int = 0, authorization: str = Header("")) -> JSONResponse:
    """One page of the course's members, with a Link to the next page as NRPS pages them."""
    access = authorization.removeprefix("Bearer ")
    try:
        allowed = Platform().validate_token(access, allowed_scopes=[NRPS_SCOPE])
    except Exception as exc:  # noqa: BLE001 (lti1p3platform raises PyJWT's and its own errors alike)
        raise HTTPException(401, f"invalid access token: {exc}") from None
    if not allowed:
        raise HTTPException(403, "this token does not grant the roster")
    roster = rosters.get(course, {"members": [], "page_size": 100, "page_delay_s": 0})
    await asyncio.sleep(roster["page_delay_s"])
    size = roster["page_size"]
    members = [{**m, "roles": [ROLES[r] for r in m["roles"]]} for m in roster["members"][page * size:(page + 1) * size]]
    more = (page + 1) * size < len(roster["members"])
    headers = {"Link": f'<{ISSUER}/memberships/{course}?page={page + 1}>; rel="next"'} if more else {}
    return JSONResponse({"id": f"{ISSUER}/memberships/{course}", "context": {"id": course}, "members": members},
                        media_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json", headers=headers)


@app.post("/deep-link-return")
def deep_link_return(JWT: str = Form()) -> HTMLResponse:
    items = Platform().validate_deeplinking_resp({"JWT": JWT})
    placed.extend(items)
    return HTMLResponse(f'<!doctype html><p id="placed" data-count="{len(items)}">Placed {len(items)} item(s).</p>')


@app.get("/deep-links")
def deep_links() -> list[dict[str, Any]]:
    return placed


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
