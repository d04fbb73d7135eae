"""Which bands are in range, from advertisements alone: a pure tracker.

Presence comes from advertisements, not connections: a band that stays connected but whose
advertisements stopped has left the room as far as custody is concerned, and a second agent's
scanner sees the band without ever connecting. Each advertisement updates the band's last-seen
time and an exponentially smoothed RSSI (``rssi += alpha * (sample - rssi)``); a band is absent
once ``missed`` whole intervals pass without one (``now - last_seen > missed * interval``). A
band never seen at all is absent ``missed`` intervals after tracking started.

:meth:`PresenceTracker.tick`, called once per interval, returns a ``presence`` telemetry reading
per band (present, smoothed RSSI, last seen, advertisements in the interval, scanner) and a
``band_absent`` event on the present-to-absent edge; :meth:`PresenceTracker.advertisement`
returns a ``band_present`` event when an absent band is heard again, so the centre can close the
alarm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from devices.base import DeviceReading
from devices.wristband.clock import require_aware

# bleak and BlueZ report -127 and HCI reports 127 for "no RSSI in this report".
RSSI_UNAVAILABLE = (-127, 127)


@dataclass(frozen=True, slots=True)
class PresencePolicy:
    """How often presence is judged and how many silent intervals make a band absent."""

    interval: timedelta = timedelta(seconds=5)
    missed: int = 3
    alpha: float = 0.3

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError("interval must be positive")
        if self.missed < 1:
            raise ValueError("missed must be at least 1")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")

    @property
    def absent_after(self) -> timedelta:
        """Silence after which a band is absent: ``missed`` intervals."""
        return self.interval * self.missed


@dataclass(slots=True)
class BandPresence:
    """What the tracker knows of one band."""

    last_seen: datetime | None = None
    rssi: float | None = None
    present: bool | None = None
    adverts: int = 0


class PresenceTracker:
    """Presence of a known set of bands as heard by one scanner."""

    def __init__(
        self,
        bands: Iterable[str],
        policy: PresencePolicy,
        scanner: str,
        started: datetime,
        room: str | None = None,
    ) -> None:
        require_aware(started)
        self.policy = policy
        self.scanner = scanner
        self.room = room
        self.started = started
        self.bands = {band: BandPresence() for band in bands}

    def advertisement(self, band: str, rssi: int | None, now: datetime) -> list[DeviceReading]:
        """``band`` was heard at ``now``; unknown bands are ignored."""
        require_aware(now)
        state = self.bands.get(band)
        if state is None:
            return []
        state.last_seen = now
        state.adverts += 1
        if rssi is not None and rssi not in RSSI_UNAVAILABLE:
            if state.rssi is None:
                state.rssi = float(rssi)
            else:
                state.rssi += self.policy.alpha * (rssi - state.rssi)
        if state.present is False:
            state.present = True
            return [
                DeviceReading(
                    band,
                    "band_present",
                    now,
                    self._where({"rssi": _rounded(state.rssi)}),
                    event=True,
                )
            ]
        state.present = True
        return []

    def is_present(self, band: str, now: datetime) -> bool:
        """Whether ``band`` was heard within the absence window."""
        state = self.bands.get(band)
        return (
            state is not None
            and state.last_seen is not None
            and now - state.last_seen <= self.policy.absent_after
        )

    def any_present(self, now: datetime) -> bool:
        """Whether any band was heard within the absence window."""
        return any(self.is_present(band, now) for band in self.bands)

    def _where(self, body: dict[str, object]) -> dict[str, object]:
        """``body`` with the scanner, and the room it covers when the fleet names one."""
        body["scanner"] = self.scanner
        if self.room is not None:
            body["room"] = self.room
        return body

    def tick(self, now: datetime) -> list[DeviceReading]:
        """Judge every band at ``now``: presence telemetry, and ``band_absent`` on the edge."""
        require_aware(now)
        out: list[DeviceReading] = []
        window = self.policy.absent_after
        for band, state in self.bands.items():
            reference = state.last_seen if state.last_seen is not None else self.started
            present = now - reference <= window
            if state.last_seen is None and present:
                # Not heard yet, still within the start-up grace: say nothing either way.
                continue
            if not present and state.present is not False:
                state.present = False
                out.append(
                    DeviceReading(
                        band,
                        "band_absent",
                        now,
                        self._where(
                            {
                                "last_seen": state.last_seen.isoformat()
                                if state.last_seen
                                else None,
                                "missed_intervals": self.policy.missed,
                            }
                        ),
                        event=True,
                    )
                )
            out.append(
                DeviceReading(
                    band,
                    "presence",
                    now,
                    self._where(
                        {
                            "present": present,
                            "rssi": _rounded(state.rssi),
                            "last_seen": state.last_seen.isoformat() if state.last_seen else None,
                            "adverts": state.adverts,
                        }
                    ),
                )
            )
            state.adverts = 0
        return out


def _rounded(rssi: float | None) -> float | None:
    return None if rssi is None else round(rssi, 1)
