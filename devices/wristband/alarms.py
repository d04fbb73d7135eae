"""One band's values turned into telemetry, alarms and custody gaps: a pure state machine.

:class:`BandMonitor` takes decoded values and the time they arrived (``now``, an aware datetime)
and returns the :class:`~devices.base.DeviceReading` objects they cause. It does no I/O and reads
no clock, so every timing rule is tested with fixed times.

Alarms are events (``event=True``), raised on an edge and re-armed when the condition clears:

==================  ===========================================================================
kind                when
==================  ===========================================================================
strap_opened        strap-closed flag falls (or is clear on the first status seen)
tamper              tamper latch rises (or is set on the first status seen)
contact_lost        skin contact falls, from the custody flags or a Heart Rate Measurement that
                    supports contact detection (``contact=None`` means unsupported, not lost)
fall                fall/shock flag rises
heart_rate_alarm    heart rate outside ``[low, high]`` in every sample for at least ``after``;
                    samples taken without skin contact do not count
battery_low         battery level below the threshold, or the band's low-battery flag; re-armed
                    at threshold + ``battery_rearm`` so a level hovering at the line does not
                    flap
custody_seq_gap     the custody ``event_seq`` skipped values (indications were lost, e.g. while
                    disconnected) or went backwards (the band restarted)
==================  ===========================================================================

The custody state reaches the monitor twice, by indication/read and by the advertisement
mirror; ``event_seq`` orders them (u16 serial arithmetic). A value equal to the last one is a
duplicate. An advertisement a little behind (within :data:`STALE_WINDOW`) a value that came by
GATT was queued before the indication and is ignored; any other step backwards means the band
restarted its counter, reported as a gap.

Telemetry (``event=False``): ``heart_rate`` per measurement, ``battery`` per level, ``custody``
per accepted status change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devices.base import DeviceReading
from devices.wristband.clock import require_aware
from devices.wristband.codec import (
    AdvertMirror,
    CustodyFlags,
    CustodyStatus,
    HeartRateMeasurement,
)

SEQ_MODULUS = 0x10000
STALE_WINDOW = 64


@dataclass(frozen=True, slots=True)
class AlarmPolicy:
    """Thresholds for one fleet's alarms."""

    heart_rate_low: int = 40
    heart_rate_high: int = 150
    heart_rate_after: timedelta = timedelta(seconds=30)
    battery_low: int = 20
    battery_rearm: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.heart_rate_low < self.heart_rate_high:
            raise ValueError("need 0 <= heart_rate_low < heart_rate_high")
        if self.heart_rate_after < timedelta(0):
            raise ValueError("heart_rate_after must not be negative")
        if not 0 <= self.battery_low <= 100:
            raise ValueError("battery_low must be a percentage")


def _flag_names(flags: CustodyFlags) -> list[str]:
    return [flag.name.lower() for flag in CustodyFlags if flag in flags and flag.name]


class BandMonitor:
    """One band's alarm and telemetry state; feed it values, get readings back."""

    def __init__(self, band: str, policy: AlarmPolicy) -> None:
        self.band = band
        self.policy = policy
        self.last_seq: int | None = None
        self.flags: CustodyFlags | None = None
        self.contact: bool | None = None
        self.battery: int | None = None
        self.gaps = 0
        self._low_battery_flag = False
        self._battery_alarmed = False
        self._hr_out_since: datetime | None = None
        self._hr_alarmed = False
        self._last_from_gatt = False

    # --- inputs ---------------------------------------------------------------------------

    def heart_rate(self, measurement: HeartRateMeasurement, now: datetime) -> list[DeviceReading]:
        """A Heart Rate Measurement arrived."""
        require_aware(now)
        out = [
            self._reading(
                "heart_rate",
                now,
                {
                    "bpm": measurement.bpm,
                    "contact": measurement.contact,
                    "energy_kj": measurement.energy_kj,
                    "rr_s": list(measurement.rr_seconds),
                },
            )
        ]
        if measurement.contact is not None:
            out += self._contact(measurement.contact, now, "heart_rate")
        if measurement.contact is False:
            # A strap lying on a table reads nonsense; do not let it start or hold the alarm.
            self._hr_out_since = None
            return out
        low, high = self.policy.heart_rate_low, self.policy.heart_rate_high
        if low <= measurement.bpm <= high:
            self._hr_out_since = None
            self._hr_alarmed = False
            return out
        if self._hr_out_since is None:
            self._hr_out_since = now
        held = now - self._hr_out_since
        if not self._hr_alarmed and held >= self.policy.heart_rate_after:
            self._hr_alarmed = True
            out.append(
                self._event(
                    "heart_rate_alarm",
                    now,
                    {
                        "bpm": measurement.bpm,
                        "low": low,
                        "high": high,
                        "since": self._hr_out_since.isoformat(),
                        "held_s": held.total_seconds(),
                    },
                )
            )
        return out

    def battery_level(self, percent: int, now: datetime, source: str) -> list[DeviceReading]:
        """A battery level arrived (read, notification or advertisement)."""
        require_aware(now)
        out: list[DeviceReading] = []
        if percent != self.battery or source != "advertisement":
            out.append(self._reading("battery", now, {"percent": percent, "source": source}))
        self.battery = percent
        return out + self._battery_check(now, source)

    def custody(self, status: CustodyStatus, now: datetime, source: str) -> list[DeviceReading]:
        """A custody status arrived by indication or read."""
        return self._custody(status.flags, status.event_seq, status.band_time, now, source)

    def mirror(self, mirror: AdvertMirror, now: datetime) -> list[DeviceReading]:
        """An advertisement's mirror of the custody state and battery arrived."""
        out = self.battery_level(mirror.battery, now, "advertisement")
        return out + self._custody(mirror.flags, mirror.event_seq, None, now, "advertisement")

    # --- custody --------------------------------------------------------------------------

    def _custody(
        self, flags: CustodyFlags, seq: int, band_time: datetime | None, now: datetime, source: str
    ) -> list[DeviceReading]:
        require_aware(now)
        out: list[DeviceReading] = []
        if self.last_seq is not None:
            step = (seq - self.last_seq) % SEQ_MODULUS
            if step == 0:
                return out
            # Only an advertisement can lag behind what an indication or read already said;
            # GATT values arrive in order, and so do advertisements among themselves.
            if (
                step >= SEQ_MODULUS - STALE_WINDOW
                and source == "advertisement"
                and self._last_from_gatt
            ):
                return out
            if step >= SEQ_MODULUS // 2:
                self.gaps += 1
                out.append(
                    self._event(
                        "custody_seq_gap",
                        now,
                        {
                            "previous": self.last_seq,
                            "seq": seq,
                            "missing": None,
                            "reason": "backwards",
                            "source": source,
                        },
                    )
                )
            elif step > 1:
                self.gaps += 1
                out.append(
                    self._event(
                        "custody_seq_gap",
                        now,
                        {
                            "previous": self.last_seq,
                            "seq": seq,
                            "missing": step - 1,
                            "reason": "skipped",
                            "source": source,
                        },
                    )
                )
        previous = self.flags
        self.last_seq = seq
        self._last_from_gatt = source != "advertisement"
        self.flags = flags
        common = {
            "event_seq": seq,
            "source": source,
            "band_time": band_time.isoformat() if band_time else None,
        }
        out.append(self._reading("custody", now, {**common, "flags": _flag_names(flags)}))

        def rose(flag: CustodyFlags) -> bool:
            return flag in flags and (previous is None or flag not in previous)

        def fell(flag: CustodyFlags) -> bool:
            return flag not in flags and (previous is None or flag in previous)

        if fell(CustodyFlags.STRAP_CLOSED):
            out.append(self._event("strap_opened", now, common))
        if rose(CustodyFlags.TAMPER_LATCHED):
            out.append(self._event("tamper", now, common))
        if rose(CustodyFlags.FALL):
            out.append(self._event("fall", now, common))
        out += self._contact(CustodyFlags.SKIN_CONTACT in flags, now, source)
        self._low_battery_flag = CustodyFlags.LOW_BATTERY in flags
        out += self._battery_check(now, source)
        return out

    def _contact(self, contact: bool, now: datetime, source: str) -> list[DeviceReading]:
        previous, self.contact = self.contact, contact
        if not contact and previous is not False:
            return [self._event("contact_lost", now, {"source": source})]
        return []

    def _battery_check(self, now: datetime, source: str) -> list[DeviceReading]:
        threshold = self.policy.battery_low
        below = self.battery is not None and self.battery < threshold
        if (below or self._low_battery_flag) and not self._battery_alarmed:
            self._battery_alarmed = True
            return [
                self._event(
                    "battery_low",
                    now,
                    {
                        "percent": self.battery,
                        "threshold": threshold,
                        "band_flag": self._low_battery_flag,
                        "source": source,
                    },
                )
            ]
        recovered = self.battery is None or self.battery >= threshold + self.policy.battery_rearm
        if self._battery_alarmed and recovered and not self._low_battery_flag:
            self._battery_alarmed = False
        return []

    # --- output ---------------------------------------------------------------------------

    def _reading(self, kind: str, now: datetime, body: dict[str, Any]) -> DeviceReading:
        return DeviceReading(self.band, kind, now, body)

    def _event(self, kind: str, now: datetime, body: dict[str, Any]) -> DeviceReading:
        return DeviceReading(self.band, kind, now, dict(body), event=True)
