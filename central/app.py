"""The central service as one FastAPI application, wired in one lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException

from central.access_log import AccessLog
from central.alarm_deriver import run_alarms
from central.api.body_limit import BodyLimit
from central.api.deps import store_writable
from central.api.gate import ApiGate
from central.api.problems import (
    PROBLEM_RESPONSES,
    on_http_error,
    on_invalid_request,
    on_unexpected,
    problems_in_openapi,
)
from central.api.routes import (
    agents,
    alarms,
    bands,
    bookings,
    cabinets,
    devices,
    docs,
    events,
    health,
    persons,
    plan,
    rooms,
    stream,
    vans,
)
from central.api.routes import audit as audit_routes
from central.broker_sys import BrokerSysState
from central.commands import CommandDispatcher
from central.feed_watch import FeedWatch
from central.fleet_state import BrokerCollector, FleetCollector
from central.gap_repair_runner import run_gap_repair
from central.ingest import Ingest
from central.plan_jobs import start_plan_jobs
from central.planning import PlanningService
from central.settings import CentralSettings
from central.static_files import STATIC_PREFIX, Assets, StaticAssets
from central.store import migrate
from central.store_disk import measure, watch_store_disk
from central.web import book, door, my_bookings, pages, wall
from central.web.deps import SignInRequired, on_sign_in_required
from central.web.signin import SignInGuard
from central.web.templating import Templates
from monitoring.central_metrics import CentralMetrics
from monitoring.planning_metrics import PlanningMetrics

log = logging.getLogger(__name__)

_STOP_SECONDS = 10.0


def create_app(settings: CentralSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    metrics = CentralMetrics.create(registry)
    planning = PlanningService(
        settings.db, PlanningMetrics.create(registry), settings.policy(), settings.thresholds()
    )
    broker_sys = BrokerSysState()
    registry.register(FleetCollector(settings.db))
    registry.register(BrokerCollector(broker_sys))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        found = migrate(settings.db)
        log.info("store %s ready (schema was version %d)", settings.db, found)
        measure(settings.db, metrics.store_disk_free)
        await asyncio.to_thread(planning.load)
        # Built once here rather than by the first 405 (its Allow list reads it) or /docs visit,
        # which would stall every other request while it is generated.
        app.openapi()
        # What is built by now (modules, the app, the plan as loaded) lives as long as the
        # process: kept out of the collector's sight, a full collection no longer walks it in
        # the middle of an answer (about 40 ms at 650 persons; `precinct bench refusals`).
        gc.freeze()
        jobs = start_plan_jobs(settings, planning)
        ingest = Ingest(settings, metrics, broker_sys)
        app.state.ingest = ingest
        app.state.commands = CommandDispatcher(settings.db, ingest.publish)
        ingest.start()
        try:
            async with asyncio.TaskGroup() as group:
                repair = None
                if settings.repair_interval > 0:
                    repair = group.create_task(
                        run_gap_repair(settings, app.state.commands, metrics), name="gap-repair"
                    )
                watch = group.create_task(app.state.feed_watch.run(), name="feed-watch")
                disk = group.create_task(
                    watch_store_disk(settings.db, metrics.store_disk_free), name="store-disk"
                )
                derive = None
                if settings.alarm_interval > 0:
                    derive = group.create_task(
                        run_alarms(settings, metrics, ingest.committed), name="alarms"
                    )
                yield
                for task in (watch, disk, repair, derive):
                    if task is not None:
                        task.cancel()
        finally:
            jobs.shutdown(wait=False)
            # Blocking join of the writer thread: keep the event loop free while it flushes.
            await asyncio.to_thread(ingest.stop, _STOP_SECONDS)

    app = FastAPI(
        title="Precinct central",
        version="1",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        # A write the full store refused answers 503 instead of 500.
        dependencies=[Depends(store_writable)],
        # FastAPI's own pages load Swagger UI and ReDoc from CDNs: /docs is served from the
        # package instead (central.api.routes.docs), and there is no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(SignInRequired, on_sign_in_required)
    # The last added runs first: the size cap, then the gate (rate limits, the token), both
    # before FastAPI reads the body.
    app.add_middleware(ApiGate, settings=settings, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # Outermost, so that a request refused by the two above is logged too.
    app.add_middleware(AccessLog)
    app.state.settings = settings
    app.state.registry = registry
    app.state.planning = planning
    app.state.feed_watch = FeedWatch(settings.db, settings.stream_poll_interval, stream.encode)
    app.state.stream_slots = stream.stream_slots(settings)
    app.state.assets = Assets()
    app.mount(STATIC_PREFIX, StaticAssets(app.state.assets), name="static")
    app.state.templates = Templates(
        settings.timezone,
        secure_cookies=settings.web_secure_cookies,
        static_url=app.state.assets.url,
    )
    app.state.signin_guard = SignInGuard.from_settings(settings)
    app.include_router(docs.router)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(events.router)
    app.include_router(devices.router)
    app.include_router(cabinets.router)
    app.include_router(rooms.router)
    app.include_router(bookings.router)
    app.include_router(bands.router)
    app.include_router(persons.router)
    app.include_router(vans.router)
    app.include_router(plan.router)
    app.include_router(audit_routes.router)
    app.include_router(stream.router)
    app.include_router(alarms.router)
    # The pages (HTML, not in the OpenAPI): sign-in and home, then one router per page.
    for page_router in (pages.router, book.router, my_bookings.router, door.router, wall.router):
        app.include_router(page_router)
    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return problems_in_openapi(fastapi_openapi())

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point
    return app
