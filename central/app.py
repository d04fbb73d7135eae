"""The central service as one FastAPI application, wired in one lifespan."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from central.api.deps import store_writable
from central.api.routes import agents, bookings, cabinets, devices, events, health, plan, rooms
from central.api.routes import audit as audit_routes
from central.commands import CommandDispatcher
from central.gap_repair_runner import run_gap_repair
from central.ingest import Ingest
from central.plan_jobs import start_plan_jobs
from central.planning import PlanningService
from central.settings import CentralSettings
from central.store import migrate
from monitoring.central_metrics import CentralMetrics
from monitoring.planning_metrics import PlanningMetrics

log = logging.getLogger(__name__)

_STOP_SECONDS = 10.0


def _json_safe(value: Any) -> Any:
    """The validation errors as JSON can carry them: a body may hold NaN or Infinity, which
    Python's JSON reader takes and strict JSON output refuses."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else [str(exc)]
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(errors))})


def create_app(settings: CentralSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    metrics = CentralMetrics.create(registry)
    planning = PlanningService(
        settings.db, PlanningMetrics.create(registry), settings.policy(), settings.thresholds()
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        found = migrate(settings.db)
        log.info("store %s ready (schema was version %d)", settings.db, found)
        await asyncio.to_thread(planning.load)
        jobs = start_plan_jobs(settings, planning)
        ingest = Ingest(settings, metrics)
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
                yield
                if repair is not None:
                    repair.cancel()
        finally:
            jobs.shutdown(wait=False)
            # Blocking join of the writer thread: keep the event loop free while it flushes.
            await asyncio.to_thread(ingest.stop, _STOP_SECONDS)

    app = FastAPI(
        title="Precinct central",
        version="1",
        lifespan=lifespan,
        dependencies=[Depends(store_writable)],
    )
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.state.settings = settings
    app.state.registry = registry
    app.state.planning = planning
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(events.router)
    app.include_router(devices.router)
    app.include_router(cabinets.router)
    app.include_router(rooms.router)
    app.include_router(bookings.router)
    app.include_router(plan.router)
    app.include_router(audit_routes.router)
    return app
