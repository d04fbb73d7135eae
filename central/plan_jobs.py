"""The planning jobs, on APScheduler's AsyncIOScheduler inside the central's lifespan.

Every job reads what it needs from the store (bookings not arrived, sessions running, clocks
and their last level), so a restarted central rebuilds its whole schedule from the store: no job
state lives only in memory. Jobs coalesce (a missed run is run once, not once per miss), never
overlap themselves, and run late within a grace time rather than not at all.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from central import feed
from central import plan_upkeep as upkeep
from central.improve_timer import ImproveTimer
from central.planning import PlanningService
from central.settings import CentralSettings
from central.store import connect
from edge_agent.outbox import is_disk_full

log = logging.getLogger(__name__)
# APScheduler logs every run at INFO; the jobs log what they did themselves.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

JOB_DEADLINE_SECONDS = 30.0
RETENTION_INTERVAL_SECONDS = 6 * 3600.0
FEED_PURGE_INTERVAL_SECONDS = 60.0
IMPROVE_JOB = "improve"


def purge_feed(db: Path, retention_hours: float) -> int:
    """Delete feed events older than ``retention_hours``; a stream further behind resyncs."""
    conn = connect(db)
    try:
        return feed.purge(conn, timedelta(hours=retention_hours))
    finally:
        conn.close()


def _in_daemon_thread(work: Callable[[], Any]) -> Awaitable[Any]:
    """``work`` in a thread of its own that the process does not wait for at exit: a CP-SAT
    solve cannot be interrupted, and a stopping central must not wait for it (what it would
    have written is written in one transaction, or not at all)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def target() -> None:
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting job, which logs it
            error: Exception | None = exc
            result = None
        else:
            error = None
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name="plan-job", daemon=True).start()
    return done


def _job(
    name: str,
    work: Callable[[], Any],
    deadline: float = JOB_DEADLINE_SECONDS,
    *,
    daemon: bool = False,
) -> Callable[[], Any]:
    async def run() -> None:
        try:
            running = _in_daemon_thread(work) if daemon else asyncio.to_thread(work)
            result = await asyncio.wait_for(running, deadline)
        except TimeoutError:
            log.warning("planning job %s ran over %.0f s", name, deadline)
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                log.exception("planning job %s failed", name)
            else:
                # Ingest has already said so, once; the job runs again at its next time.
                log.debug("planning job %s skipped: the store is full", name)
        except Exception:
            log.exception("planning job %s failed", name)
        else:
            if result:
                log.info("planning job %s: %s", name, result)

    run.__name__ = f"plan_job_{name}"
    return run


class _ImproveMover:
    """Moves the improve job's next run where the timer says: one job, so runs never overlap
    (``max_instances``) and a run due twice runs once (``coalesce``). The timer is only
    touched in the event loop's thread."""

    def __init__(
        self, scheduler: AsyncIOScheduler, timer: ImproveTimer, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.scheduler = scheduler
        self.timer = timer
        self.loop = loop

    def plan_changed(self, _cause: str) -> None:
        """The planning service's listener, called in whatever thread changed the plan."""
        try:
            self.loop.call_soon_threadsafe(self._changed)
        except RuntimeError:
            log.debug("plan changed after the planning jobs stopped")  # the loop is closed

    def wrap(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.timer.started(datetime.now(UTC))
            try:
                await job()
            finally:
                self._move(self.timer.finished(datetime.now(UTC)))

        run.__name__ = getattr(job, "__name__", "plan_job_improve")
        return run

    def _changed(self) -> None:
        self._move(self.timer.changed(datetime.now(UTC)))

    def _move(self, due: datetime | None) -> None:
        if due is None or not self.scheduler.running:
            return
        # The interval counts on from this run: the periodic run stays the idle one.
        self.scheduler.modify_job(IMPROVE_JOB, next_run_time=due)


def start_plan_jobs(settings: CentralSettings, service: PlanningService) -> AsyncIOScheduler:
    interval = settings.plan_interval
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": max(1, int(interval * 2)) if interval else 60,
        },
    )
    soon = datetime.now(UTC) + timedelta(seconds=1)
    if interval > 0:
        jobs: dict[str, Callable[[], Any]] = {
            "custody": lambda: upkeep.escalate_clocks(service),
            "no_show": lambda: upkeep.release_no_shows(service, settings.no_show_grace),
            "overrun": lambda: upkeep.handle_overruns(service),
            "check": lambda: upkeep.check_now(service),
        }
        rules = settings.van_rules()
        if rules is not None:
            jobs["vans"] = lambda: upkeep.track_vans(service, rules, settings.late_van_minutes)
        for name, work in jobs.items():
            scheduler.add_job(
                _job(name, work),
                "interval",
                seconds=interval,
                id=name,
                next_run_time=soon,
                replace_existing=True,
            )
    if settings.improve_interval > 0:
        timer = ImproveTimer(settings.improve_after_change, settings.improve_interval, soon)
        mover = _ImproveMover(scheduler, timer, asyncio.get_running_loop())
        scheduler.add_job(
            mover.wrap(
                _job(
                    "improve",
                    lambda: upkeep.improve_plan(
                        service, settings.improve_budget, int(settings.improve_window * 60)
                    ),
                    settings.improve_budget + JOB_DEADLINE_SECONDS,
                    daemon=True,
                )
            ),
            "interval",
            seconds=settings.improve_interval,
            id=IMPROVE_JOB,
            next_run_time=soon + timedelta(seconds=settings.improve_interval),
            replace_existing=True,
        )
        if settings.improve_after_change > 0:
            service.on_change(mover.plan_changed)
    scheduler.add_job(
        _job("retention", lambda: upkeep.purge(service, settings.retention_days)),
        "interval",
        seconds=RETENTION_INTERVAL_SECONDS,
        id="retention",
        next_run_time=soon,
        replace_existing=True,
    )
    scheduler.add_job(
        _job("feed", lambda: purge_feed(settings.db, settings.feed_retention_hours)),
        "interval",
        seconds=FEED_PURGE_INTERVAL_SECONDS,
        id="feed",
        next_run_time=soon,
        replace_existing=True,
    )
    scheduler.start()
    return scheduler
