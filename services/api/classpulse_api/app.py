"""The ClassPulse REST API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import SecretStr

from classpulse_api.dispatcher import Dispatcher
from classpulse_api.embed import EmbedIssuers, ViewerTokens
from classpulse_api.events import EventLog
from classpulse_api.live import LiveBroadcaster
from classpulse_api.lti import LaunchVerifier, LoginStates, LtiPlatforms, PlatformKeys, Roster, RosterReads, ToolKeys
from classpulse_api.outbox import Outbox
from classpulse_api.routes import classes, dashboard, embed, keys, lti, metrics, webhooks, xapi_log
from classpulse_api.series import SeriesReader
from classpulse_api.settings import ApiSettings
from classpulse_api.store import ClassStore
from classpulse_api.webhooks import WebhookSender, WebhookStore
from classpulse_api.xapi import LessonIndices, XapiExport, XapiSender, XapiStatements
from classpulse_core.backoff import Backoff, Retries
from classpulse_core.share_correction import ShareCorrection
from classpulse_store.redis_clients import async_redis_client
from classpulse_web.auth import Role
from classpulse_web.keystore import KeyStore
from classpulse_web.webapp import install_common

log = logging.getLogger(__name__)

START_RETRY = Backoff(initial_s=0.5, max_s=10.0, jitter=0.2)
START_WAIT_S = 2.0
"""How long the start waits for what it keeps in Redis (the bootstrap admin key, the LTI registrations moved) before
it serves without (not ready)."""

T = TypeVar("T")


@dataclass
class Background:
    """The tasks an API process runs beside its requests, as its readiness reports them: not ready until the bootstrap
    admin key is installed (a deployment's first admin call needs it) and the LTI registrations kept the old way are
    moved (a launch finds its platform only once they are), nor once the integrations worker stopped (no webhook or
    xAPI statement would leave this process any more)."""

    admin_key: asyncio.Task[None] | None = None
    lti_platforms: asyncio.Task[None] | None = None
    worker: asyncio.Task[None] | None = None

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_report_failure)
        return task

    def problem(self) -> str | None:
        """Why the process is not ready, if it is not."""
        if problem := _start_problem(self.admin_key, "the bootstrap admin key is not installed yet", "the bootstrap admin key was not installed"):
            return problem
        if problem := _start_problem(self.lti_platforms, "the LTI registrations are not moved yet", "the LTI registrations were not moved"):
            return problem
        if self.worker is not None and self.worker.done():
            return f"the integrations worker stopped: {_failure(self.worker) or 'shutting down'}"
        return None


def _start_problem(task: asyncio.Task[None] | None, not_yet: str, not_done: str) -> str | None:
    """Why a start-up task keeps the process not ready: still waiting for Redis, or ended without doing its work."""
    if task is None:
        return None
    if not task.done():
        return f"{not_yet}: waiting for redis"
    failure = _failure(task)
    return None if failure is None else f"{not_done}: {failure}"


def _failure(task: asyncio.Task[None]) -> str | None:
    """What ended a task that is done, if it did not return: its exception, or its cancellation."""
    if task.cancelled():
        return "cancelled"
    exception = task.exception()
    return None if exception is None else repr(exception)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())


async def _once_redis_answers(work: Callable[[], Awaitable[T]], not_yet: str) -> T:
    """What `work` gives, tried again (the whole of it: it must be idempotent) until Redis answers."""
    retries = Retries(START_RETRY)
    while True:
        try:
            return await work()
        except aioredis.RedisError as exc:
            delay_s = retries.failed()
            log.warning("%s, retrying", not_yet, extra={"error": repr(exc), "retry_in_s": delay_s})
            await asyncio.sleep(delay_s)


async def install_admin_key(keys: KeyStore, presented: SecretStr) -> None:
    """The bootstrap admin key (CLASSPULSE_ADMIN_API_KEY) stored, tried again until Redis answers."""
    installed = await _once_redis_answers(
        lambda: keys.install(presented.get_secret_value(), Role.ADMIN, "bootstrap admin"), "bootstrap admin key not installed yet"
    )
    if installed is None:
        log.warning("the bootstrap admin key was revoked; it stays revoked (put a new one in its Secret)")


async def move_lti_platforms(platforms: LtiPlatforms) -> None:
    """The LTI registrations an older API kept (a key each) moved to where logins find them, tried again until Redis
    answers. Every replica moves at start-up: each registration is moved once, whoever moves it."""
    moved = await _once_redis_answers(platforms.move_legacy, "lti registrations not moved yet")
    if moved:
        log.info("lti registrations moved", extra={"moved": moved})


async def _stop(task: asyncio.Task[None], timeout_s: float) -> None:
    """Lets a task end by itself within `timeout_s`, then cancels it; never raises what the task raised (logged when
    it ended)."""
    await asyncio.wait([task], timeout=timeout_s)
    if not task.done():
        task.cancel()
        await asyncio.wait([task])


def create_app(settings: ApiSettings) -> FastAPI:
    client = async_redis_client(settings, decode_responses=True, protocol=3)
    # Streams block for up to a second per read: a client of their own keeps them off the request pool's sockets.
    stream_client = async_redis_client(settings, socket_timeout=10, decode_responses=True, protocol=3)
    # The delivery worker's own too: it blocks on the outbox queue for a second at a time.
    outbox_client = async_redis_client(settings, socket_timeout=10, decode_responses=True)

    background = Background()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Neither waits for Redis for long: an API started while Redis is away (restarting, failing over) serves, not
        # ready, until it answers, rather than exiting into a crash loop.
        if settings.admin_api_key:
            background.admin_key = background.start(
                install_admin_key(app.state.keys, settings.admin_api_key), "bootstrap admin key"
            )
        background.lti_platforms = background.start(move_lti_platforms(app.state.lti_platforms), "lti registrations moved")
        # With Redis up, as nearly always, the key and the registrations then work from the first request on.
        await asyncio.wait([task for task in (background.admin_key, background.lti_platforms) if task is not None], timeout=START_WAIT_S)
        stop = asyncio.Event()
        if settings.integrations_worker:
            background.worker = background.start(app.state.dispatcher.run(stop), "integrations worker")
        yield
        await app.state.live.close()
        stop.set()
        for start_task in (background.admin_key, background.lti_platforms):
            if start_task is not None:
                await _stop(start_task, 0)
        if background.worker is not None:
            # The turn in progress finishes (a delivery in flight gets its attempt recorded); what is left waits in Redis.
            await _stop(background.worker, settings.webhook_timeout_s + 5)
        await app.state.webhook_sender.aclose()
        await app.state.lti_roster_reads.close()
        await lti_http.aclose()
        if xapi is not None:
            await xapi.sender.aclose()
        await client.aclose()
        await stream_client.aclose()
        await outbox_client.aclose()

    app = FastAPI(
        title="ClassPulse API",
        version="1",
        description=(
            "Class-level metrics of live classes: faces on camera, presence, the share of each emotion and the"
            " indices built on them, over time. Every route but health and metrics needs an API key."
        ),
        lifespan=lifespan,
        # operationId = the route function's name (`create_class`, `summary`): what generated clients name their calls.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    # Loaded before serving anything: an API that cannot correct class shares must not start and show biased ones.
    app.state.shares = ShareCorrection.load(settings.quantification_path(), settings.model_signature)
    app.state.reader = SeriesReader(client, settings.resolutions(), settings.newest_sample_lead_ms())
    app.state.classes = ClassStore(client, [resolution.name for resolution in settings.resolutions()])
    app.state.keys = KeyStore(client)
    app.state.events = EventLog(stream_client)
    app.state.live = LiveBroadcaster(app.state.reader, app.state.events)
    app.state.embed_issuers = EmbedIssuers(client)
    app.state.viewer_tokens = ViewerTokens(
        client, app.state.embed_issuers, app.state.keys, settings.embed_audience, settings.embed_token_max_lifetime_s
    )
    app.state.webhooks = WebhookStore(client)
    # The platforms' keysets, token endpoints and rosters: addresses an admin registered, called during a launch (the
    # rosters after it).
    lti_http = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
    app.state.lti_platforms = LtiPlatforms(client)
    app.state.lti_states = LoginStates(client, settings.lti_state_ttl_s)
    app.state.lti_tool_keys = ToolKeys(client)
    app.state.lti_verifier = LaunchVerifier(app.state.lti_platforms, app.state.lti_states, PlatformKeys(lti_http))
    app.state.lti_roster_reads = RosterReads(Roster(lti_http, app.state.lti_tool_keys))
    app.state.outbox = Outbox(outbox_client)
    app.state.webhook_sender = WebhookSender(
        settings.webhook_allowed_networks, settings.webhook_allowed_schemes, settings.webhook_timeout_s
    )
    xapi = None
    if settings.xapi_endpoint is not None:
        xapi = XapiExport(
            XapiStatements(settings.public_url, settings.emotion_enabled),
            LessonIndices(app.state.reader, app.state.shares),
            XapiSender(str(settings.xapi_endpoint), settings.xapi_username, settings.xapi_password, settings.webhook_timeout_s),
            settings.xapi_summary_interval_s * 1000,
        )
    app.state.dispatcher = Dispatcher(
        outbox_client, app.state.outbox, app.state.webhooks, app.state.classes, app.state.webhook_sender,
        settings.webhook_max_attempts, settings.webhook_retry_initial_s, settings.webhook_retry_max_s, xapi,
        settings.emotion_enabled,
    )

    async def ready() -> tuple[bool, str]:
        try:
            await client.ping()
        except aioredis.RedisError as exc:
            return False, f"redis: {exc}"
        problem = background.problem()
        return problem is None, problem or "redis reachable"

    install_common(app, "api", ready, settings.max_request_bytes)
    for module in (classes, metrics, keys, embed, webhooks, xapi_log, lti, dashboard):
        app.include_router(module.router)
    return app
