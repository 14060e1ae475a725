"""The ClassPulse REST API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from classpulse_api.dispatcher import Dispatcher
from classpulse_api.embed import EmbedIssuers, ViewerTokens
from classpulse_api.events import EventLog
from classpulse_api.live import LiveBroadcaster
from classpulse_api.lti import LaunchVerifier, LoginStates, LtiPlatforms, PlatformKeys, Roster, ToolKeys
from classpulse_api.outbox import Outbox
from classpulse_api.routes import classes, dashboard, embed, keys, lti, metrics, webhooks, xapi_log
from classpulse_api.series import SeriesReader
from classpulse_api.settings import ApiSettings
from classpulse_api.store import ClassStore
from classpulse_api.webhooks import WebhookSender, WebhookStore
from classpulse_api.xapi import LessonIndices, XapiExport, XapiSender, XapiStatements
from classpulse_core.share_correction import ShareCorrection
from classpulse_store.redis_clients import async_redis_client
from classpulse_web.auth import Role
from classpulse_web.keystore import KeyStore
from classpulse_web.webapp import install_common

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    client = async_redis_client(settings, decode_responses=True, protocol=3)
    # Streams block for up to a second per read: a client of their own keeps them off the request pool's sockets.
    stream_client = async_redis_client(settings, socket_timeout=10, decode_responses=True, protocol=3)
    # The delivery worker's own too: it blocks on the outbox queue for a second at a time.
    outbox_client = async_redis_client(settings, socket_timeout=10, decode_responses=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.admin_api_key and not await app.state.keys.install(
            settings.admin_api_key.get_secret_value(), Role.ADMIN, "bootstrap admin"
        ):
            log.warning("the bootstrap admin key was revoked; it stays revoked (put a new one in its Secret)")
        stop = asyncio.Event()
        worker = asyncio.create_task(app.state.dispatcher.run(stop)) if settings.integrations_worker else None
        yield
        await app.state.live.close()
        stop.set()
        if worker is not None:
            # The turn in progress finishes (a delivery in flight gets its attempt recorded); what is left waits in Redis.
            await asyncio.wait_for(worker, timeout=settings.webhook_timeout_s + 5)
        await app.state.webhook_sender.aclose()
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
    # The platforms' keysets, token endpoints and rosters: addresses an admin registered, called during a launch.
    lti_http = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
    app.state.lti_platforms = LtiPlatforms(client)
    app.state.lti_states = LoginStates(client, settings.lti_state_ttl_s)
    app.state.lti_tool_keys = ToolKeys(client)
    app.state.lti_verifier = LaunchVerifier(app.state.lti_platforms, app.state.lti_states, PlatformKeys(lti_http))
    app.state.lti_roster = Roster(lti_http, app.state.lti_tool_keys)
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
        return True, "redis reachable"

    install_common(app, "api", ready, settings.max_request_bytes)
    for module in (classes, metrics, keys, embed, webhooks, xapi_log, lti, dashboard):
        app.include_router(module.router)
    return app
