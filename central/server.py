"""Runs the central application under uvicorn."""

from __future__ import annotations

import uvicorn

from central.app import create_app
from central.settings import CentralSettings
from central.store import StoreError, migrate
from central.store_lock import StoreBusyError, held_by_central


def serve(settings: CentralSettings) -> None:
    host, port = settings.listen_address
    settings.check_files()
    migrate(settings.db)  # before uvicorn, so that a bad store file is a clear error, not a trace
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        lifespan="on",
        # Precinct's own access log names the caller (central.access_log); uvicorn's would not.
        access_log=False,
        # uvicorn's loggers go through the process's one handler (monitoring.logs).
        log_config=None,
    )
    try:
        with held_by_central(settings.db):  # a restore refuses while this is held
            uvicorn.Server(config).run()
    except StoreBusyError as exc:
        raise StoreError(str(settings.db), None, str(exc)) from None
