"""Liveness, readiness and Prometheus metrics (no token: probes and scrapers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# A probe's answer, not an error: a 503 here has the same shape as the 200.
@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the failing checks are false"}},
)
def readyz(request: Request, response: Response) -> dict[str, object]:
    ingest = request.app.state.ingest
    checks = {"broker": ingest.subscribed.is_set(), "store": ingest.writer_alive.is_set()}
    ready = all(checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ready" if ready else "not ready", "checks": checks}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
