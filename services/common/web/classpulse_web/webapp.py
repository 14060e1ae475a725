"""What every FastAPI service of ClassPulse has: health and readiness probes, Prometheus metrics, one error body,
baseline security headers, and a bound on request bodies enforced before any route (so before authentication).

Errors always answer `{"error": {"status": int, "message": str, "detail": ...}}`, never a stack trace; Redis being
unreachable answers 503 with Retry-After, since the same request will work once it is back. No CORS middleware is
installed on purpose: browsers refuse other origins' reads (the dashboard and the student page are same-origin).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from classpulse_core.dependencies import REDIS_REFUSES_WRITES

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("classpulse_http_requests_total", "HTTP requests", ["service", "route", "method", "status"])
HTTP_SECONDS = Histogram("classpulse_http_request_seconds", "HTTP request time", ["service", "route", "method"])

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]

BASELINE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Responses carry class data and, once, new API keys: no cache along the way may keep them.
    "Cache-Control": "no-store",
}
"""On every response unless the route set its own (the dashboard's pages send a stricter set)."""


def error_body(status: int, message: str, detail: object = None) -> dict[str, object]:
    return {"error": {"status": status, "message": message, "detail": detail}}


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes, the most this service accepts")


class BodyLimit:
    """Refuses a request body over `limit` bytes whoever sends it: a declared Content-Length before the request reaches
    any route (an anonymous client cannot make a service read or buffer it), a chunked body as soon as what streamed
    in passes the limit. Either way a 413 with the standard error body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            refusal = BodyTooLarge(self.limit)
            # The unread body is not drained: the connection is closed after the answer.
            response = JSONResponse(error_body(413, refusal.detail), status_code=413, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)  # answered by the HTTPException handler like any refusal
            return message

        await self.app(scope, bounded_receive, send)


def install_common(app: FastAPI, service: str, readiness: ReadinessCheck, max_body_bytes: int) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: dependencies reachable")
    async def readyz() -> JSONResponse:
        ok, detail = await readiness()
        return JSONResponse({"status": "ok" if ok else "unavailable", "detail": detail}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]} for error in exc.errors()
        ]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems)
        return JSONResponse(error_body(422, f"invalid request: {message}", problems), status_code=422)

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def storage_unavailable(_request: Request, exc: redis.exceptions.RedisError) -> JSONResponse:
        log.warning("redis unavailable", extra={"service": service, "error": repr(exc)})
        return JSONResponse(error_body(503, "storage unavailable; retry shortly"), status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(redis.exceptions.ResponseError)
    async def storage_refuses(request: Request, exc: redis.exceptions.ResponseError) -> JSONResponse:
        # A primary no replica follows (NOREPLICAS), a replica whose primary is away: writes are refused for a while
        # (a plain error reply; memory full has its own type, a bug or bad command stays a 500).
        if REDIS_REFUSES_WRITES.search(str(exc)) or isinstance(exc, redis.exceptions.OutOfMemoryError):
            return await storage_unavailable(request, exc)
        return await unexpected_error(request, exc)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"service": service})
        return JSONResponse(error_body(500, "internal error"), status_code=500)

    # Added before the middleware below, so inside it: refusals are counted and carry the baseline headers too.
    app.add_middleware(BodyLimit, limit=max_body_bytes)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path, so that class ids do not explode the label set.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        HTTP_SECONDS.labels(service, route, request.method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(service, route, request.method, str(response.status_code)).inc()
        # A page with its own Content-Security-Policy says who may frame it (frame-ancestors: an embedded dashboard
        # names its platform); a DENY added here would override that in browsers that read both.
        framing_set = "content-security-policy" in response.headers
        for name, value in BASELINE_HEADERS.items():
            if not (framing_set and name == "X-Frame-Options"):
                response.headers.setdefault(name, value)
        return response
