"""Embedded dashboards: issuers registered by an admin, and the exchange of a platform's viewer token for a viewer key
(classpulse_api.embed). The page itself is served by the dashboard routes (`/dashboard/embed`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from classpulse_api.deps import AdminKey
from classpulse_api.embed import EmbedIssuerCreate, EmbedIssuerOut, EmbedRefused, ViewerSession

router = APIRouter(prefix="/v1/embed", tags=["embedded dashboards"])

VIEWER_TOKEN = HTTPBearer(
    auto_error=False, scheme_name="viewerToken", bearerFormat="JWT",
    description="a viewer token minted by a registered platform (iss, aud, class_id, iat, exp, jti)",
)
IssuerParam = Annotated[str, Path(description="the issuer (`iss`) as registered")]


@router.post("/issuers", status_code=201, response_model=EmbedIssuerOut, summary="Register a platform's verification key (admin)")
async def register_issuer(body: EmbedIssuerCreate, _key: AdminKey, request: Request) -> EmbedIssuerOut:
    try:
        registered: EmbedIssuerOut = await request.app.state.embed_issuers.register(body)
    except ValueError as exc:
        raise HTTPException(422, f"invalid key: {exc}") from None
    return registered


@router.get("/issuers", response_model=list[EmbedIssuerOut], summary="Registered issuers, without their keys (admin)")
async def list_issuers(_key: AdminKey, request: Request) -> list[EmbedIssuerOut]:
    issuers: list[EmbedIssuerOut] = await request.app.state.embed_issuers.list()
    return issuers


@router.delete("/issuers/{issuer:path}", status_code=204, summary="Remove an issuer: its tokens stop opening anything (admin)")
async def delete_issuer(issuer: IssuerParam, _key: AdminKey, request: Request) -> Response:
    if not await request.app.state.embed_issuers.delete(issuer):
        raise HTTPException(404, f"no issuer {issuer!r}")
    return Response(status_code=204)


@router.post(
    "/sessions", response_model=ViewerSession,
    summary="Exchange a viewer token (once) for a read-only key to its class",
    responses={401: {"description": "malformed, unknown issuer, bad signature, expired, too long-lived or replayed"},
               403: {"description": "the issuer may not open that class"}},
)
async def exchange_viewer_token(
    request: Request, token: Annotated[HTTPAuthorizationCredentials | None, Depends(VIEWER_TOKEN)]
) -> ViewerSession:
    if token is None:
        raise HTTPException(401, "a viewer token is required (Authorization: Bearer <JWT>)", headers={"WWW-Authenticate": "Bearer"})
    try:
        session: ViewerSession
        session, _issuer = await request.app.state.viewer_tokens.exchange(token.credentials, request.app.state.classes.get)
    except EmbedRefused as refusal:
        raise HTTPException(refusal.status, refusal.message, headers={"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None) from None
    return session
