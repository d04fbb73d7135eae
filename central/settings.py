"""The central service's one settings object, validated at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from central.alarm_rules import ALARM_KINDS, Severity
from central.map_settings import (
    StationFence,
    check_attribution,
    check_crs,
    check_tile_url,
    parse_stations,
)
from central.van_eta import VanRules
from central.web.sessions import SessionRules
from edge_agent.broker_url import BrokerUrl, parse_broker_url
from edge_agent.settings_source import ConfigError, parse_host_port
from edge_agent.tls import check_client_tls, check_tls_keys
from edge_agent.wire import is_valid_name
from monitoring.logs import LOG_FORMATS
from scheduling.custody import ClockThresholds
from scheduling.model import LegalBasis
from scheduling.policy import Policy

LOG_LEVELS = ("debug", "info", "warning", "error")
# The longest session an ingest process may ask the broker to keep: the month that
# deploy/mosquitto.conf gives MQTT 3.1.1 sessions.
MAX_SESSION_EXPIRY = 30 * 24 * 3600
# A run after a change that waits longer than an hour is no longer one after the change: the
# periodic run (improve_interval) is for that.
MAX_IMPROVE_AFTER_CHANGE = 3600.0


@dataclass(frozen=True, slots=True)
class CentralSettings:
    db: Path
    broker: str = "mqtt://127.0.0.1:1883"
    listen: str = "127.0.0.1:8080"
    # Each ingest process needs its own MQTT client id. Unset: precinct-central-<id of the store>,
    # made once per store (central/store_identity.py), so that two centrals on two stores never
    # clash while a restart keeps its session. Extra ingest processes on one store set their own.
    client_id: str = ""
    # MQTT 5 for the ingest connection (off only for brokers that speak MQTT 3.1.1 alone: the
    # embedded demo broker). Under MQTT 5 the broker keeps the session of an ingest process that
    # is gone for session_expiry seconds, then drops it with whatever was queued for it: a
    # restart within that time resumes with nothing lost, and a retired member stops taking its
    # share of a shared subscription. Under MQTT 3.1.1 the broker's own persistent-session
    # expiry applies (persistent_client_expiration in deploy/mosquitto.conf).
    mqtt5: bool = True
    session_expiry: int = 900
    # Shared subscriptions spread data over several ingest processes. Off for brokers that lack
    # them (the embedded demo broker).
    shared_subscription: bool = True
    share_group: str = "precinct-ingest"
    # Read the broker's own counters from $SYS/# (the precinct_broker_* metrics). Off for a
    # broker whose ACL forbids it, and for the embedded demo broker, which publishes none.
    broker_sys: bool = True
    # Upper bound on messages per store commit; keep <= the broker's max_inflight_messages.
    batch_max: int = 1000
    keepalive: int = 30
    # TLS (an mqtts:// broker): the CA that signed the broker's certificate (unset: the system's
    # CAs), and the central's certificate and key (precinct pki issue precinct-central: the
    # common name is the broker user name the ACL grants the central's topics to).
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Gap repair: every repair_interval seconds (0: off), ranges missing for repair_grace seconds
    # are asked for again, at most every repair_retry seconds.
    repair_interval: float = 5.0
    repair_grace: float = 10.0
    repair_retry: float = 30.0
    log_level: str = "info"
    # text (one line per record) or json (one object per line); see monitoring/logs.py.
    log_format: str = "text"
    # The centre's time zone: what "a day" means for the schedule.
    timezone: str = "UTC"
    # Planning jobs: clocks, no-shows, overruns and the plan check every plan_interval seconds
    # (0: off); a booked unit not arrived no_show_grace minutes after its expected arrival is
    # released; closed bookings older than retention_days are deleted.
    plan_interval: float = 60.0
    no_show_grace: int = 30
    retention_days: int = 365
    # The CP-SAT improver: every improve_interval seconds (0: off, and no run after changes
    # either), improve_budget seconds for a whole run over the sessions starting in the next
    # improve_window hours (0: every booked day, so that a day booked ahead is improved too);
    # and improve_after_change seconds after the plan last changed (0: only every
    # improve_interval), so that a burst of bookings gives one run.
    improve_interval: float = 300.0
    improve_budget: float = 5.0
    improve_window: float = 0.0
    improve_after_change: float = 10.0
    # Escort vans: where the centre is (unset: no van tracking), the geofence radius that counts
    # as arrival, and how late a van's ETA must run before its booking is planned again.
    centre_lat: float | None = None
    centre_lon: float | None = None
    arrival_radius_m: float = 150.0
    late_van_minutes: int = 15
    # The wall's van map (docs/web.md): no basemap unless map_tile_url names the force's own XYZ
    # tile server ({z}/{x}/{y}), with map_attribution shown in its corner and map_crs its datum
    # (wgs84, or gcj02 for Chinese tile servers); map_stations draws stations' geofences,
    # "STATION:LAT,LON,RADIUS_M" separated by ";".
    map_tile_url: str = ""
    map_attribution: str = ""
    map_crs: str = "wgs84"
    map_stations: str = ""
    # Legal limits in hours per legal basis (domain.md; articles marked "verify" stay here).
    limit_criminal_summons: float = 12.0
    limit_criminal_summons_serious: float = 24.0
    limit_administrative: float = 8.0
    limit_administrative_detention_likely: float = 24.0
    limit_continued_questioning: float = 24.0
    limit_continued_questioning_approved: float = 48.0
    limit_criminal_detention: float = 24.0
    # Step times in minutes.
    entry_minutes_booked: int = 10
    entry_minutes_walk_in: int = 30
    sobering_minutes: int = 240
    exit_minutes: int = 30
    # Custody clock levels: yellow from this share of the limit, orange from that share or a
    # projected end this close to the limit, red this close to the limit or projected past it.
    custody_yellow_fraction: float = 0.5
    custody_orange_fraction: float = 0.75
    custody_orange_within_minutes: int = 120
    custody_red_before_minutes: int = 60
    # HTTP edge: a request body past max_body_bytes is answered 413 before anything parses it.
    max_body_bytes: int = 256 * 1024
    # Rate limits, token buckets (a rate per second and the burst it may spend at once; rate 0:
    # off): requests per API token, and failed authentications per client address.
    rate_limit_token_rate: float = 100.0
    rate_limit_token_burst: int = 600
    rate_limit_auth_failure_rate: float = 1.0
    rate_limit_auth_failure_burst: int = 20
    # People's sessions on the pages (docs/web.md): one ends session_idle_minutes after its last
    # use and session_max_hours after sign-in however busy (fractions allowed); its cookie is
    # Secure on https requests, and on every request when web_secure_cookies is true (behind a
    # proxy that ends TLS). Failed sign-ins: a token bucket per client address and one per
    # name, signin_failure_burst at once then signin_failure_rate a second (rate 0: off).
    session_idle_minutes: float = 30.0
    session_max_hours: float = 12.0
    web_secure_cookies: bool = False
    signin_failure_rate: float = 0.05
    signin_failure_burst: int = 5
    # The live stream (GET /api/v1/stream): the feed keeps feed_retention_hours of events (a
    # client further behind is told to reload); streams look for new events every
    # stream_poll_interval seconds, send a heartbeat every stream_ping_interval seconds, and one
    # token holds at most stream_max_per_token streams at once.
    feed_retention_hours: float = 24.0
    stream_poll_interval: float = 0.05
    stream_ping_interval: float = 5.0
    stream_max_per_token: int = 4
    # The wall reloads its rooms and custody panels every wall_refresh_seconds even without a
    # stream event: a new booking and an entry into the area are told to no one by the feed.
    wall_refresh_seconds: float = 30.0
    # Alarms: derived from the store every alarm_interval seconds (0: off); an agent offline for
    # longer than agent_offline_alarm seconds raises agent_offline.
    alarm_interval: float = 1.0
    agent_offline_alarm: float = 60.0
    # Bands on people: the agents' presence interval (seconds) and how many of them may pass
    # without any scanner hearing a worn band before person_not_heard is raised.
    presence_interval: float = 5.0
    presence_missed: int = 3
    # Severity per alarm kind (critical, warning, info); the defaults are in
    # central/alarm_rules.py (DEFAULT_SEVERITY).
    alarm_severity_door_forced: str = "critical"
    alarm_severity_tamper: str = "critical"
    alarm_severity_power_fail: str = "warning"
    alarm_severity_strap_opened: str = "critical"
    alarm_severity_band_tamper: str = "critical"
    alarm_severity_heart_rate_alarm: str = "critical"
    alarm_severity_contact_lost: str = "warning"
    alarm_severity_battery_low: str = "info"
    alarm_severity_band_absent: str = "warning"
    alarm_severity_outbox_full: str = "warning"
    alarm_severity_disk_full: str = "critical"
    alarm_severity_agent_reset: str = "warning"
    alarm_severity_agent_offline: str = "warning"
    alarm_severity_device_offline: str = "warning"
    alarm_severity_wrong_room: str = "critical"
    alarm_severity_person_not_heard: str = "critical"
    alarm_severity_custody_red: str = "critical"
    alarm_severity_custody_black: str = "critical"
    alarm_severity_plan_violation: str = "critical"
    alarm_severity_van_late: str = "warning"

    def __post_init__(self) -> None:
        try:
            parse_broker_url(self.broker)
        except ValueError as exc:
            raise ValueError(f"broker: {exc}") from None
        parse_host_port(self.listen, "listen")
        check_tls_keys(parse_broker_url(self.broker).tls, self.tls_ca, self.tls_cert, self.tls_key)
        if self.client_id and not is_valid_name(self.client_id):
            raise ValueError(f"client_id: {self.client_id!r} must be 1-64 letters, digits or _.:-")
        if not is_valid_name(self.share_group):
            raise ValueError(f"share_group: {self.share_group!r} is not a valid name")
        if self.batch_max < 1:
            raise ValueError("batch_max: must be at least 1")
        if min(self.repair_interval, self.repair_grace, self.repair_retry) < 0:
            raise ValueError("repair_interval: repair settings must not be negative")
        if self.keepalive < 1:
            raise ValueError("keepalive: must be at least 1")
        if not 1 <= self.session_expiry <= MAX_SESSION_EXPIRY:
            raise ValueError(
                f"session_expiry: must be between 1 and {MAX_SESSION_EXPIRY} seconds (30 days)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: {self.timezone!r} is not a known time zone") from None
        if min(self.improve_interval, self.improve_budget, self.improve_window) < 0:
            raise ValueError("improve_interval: improver settings must not be negative")
        if not 0 <= self.improve_after_change <= MAX_IMPROVE_AFTER_CHANGE:
            raise ValueError(
                f"improve_after_change: must be between 0 (off) and {MAX_IMPROVE_AFTER_CHANGE} s"
            )
        if self.plan_interval < 0 or self.no_show_grace < 0 or self.retention_days < 1:
            raise ValueError(
                "plan_interval: planning settings must not be negative (retention_days at least 1)"
            )
        if (self.centre_lat is None) != (self.centre_lon is None):
            raise ValueError("centre_lat: give both centre_lat and centre_lon, or neither")
        if (
            self.centre_lat is not None
            and self.centre_lon is not None
            and not (-90 <= self.centre_lat <= 90 and -180 <= self.centre_lon <= 180)
        ):
            raise ValueError("centre_lat: not a position on Earth")
        if self.arrival_radius_m <= 0 or self.late_van_minutes < 0:
            raise ValueError("arrival_radius_m: must be positive (late_van_minutes >= 0)")
        check_tile_url(self.map_tile_url)
        check_attribution(self.map_attribution)
        check_crs(self.map_crs)
        self.station_fences()
        for basis in LegalBasis:
            hours = getattr(self, f"limit_{basis.value}", None)
            if hours is not None and not 0 < hours <= 72:
                raise ValueError(f"limit_{basis.value}: must be between 0 and 72 hours")
        if (
            min(
                self.entry_minutes_booked,
                self.entry_minutes_walk_in,
                self.sobering_minutes,
                self.exit_minutes,
            )
            < 0
        ):
            raise ValueError("entry_minutes_booked: step times must not be negative")
        try:
            self.thresholds()
        except ValueError as exc:
            raise ValueError(f"custody_yellow_fraction: {exc}") from None
        if not 1024 <= self.max_body_bytes <= 64 * 1024 * 1024:
            raise ValueError("max_body_bytes: must be between 1 KiB and 64 MiB")
        if min(self.rate_limit_token_rate, self.rate_limit_auth_failure_rate) < 0:
            raise ValueError("rate_limit_token_rate: rates must not be negative (0: off)")
        if min(self.rate_limit_token_burst, self.rate_limit_auth_failure_burst) < 1:
            raise ValueError("rate_limit_token_burst: bursts must be at least 1")
        if not 0.5 <= self.wall_refresh_seconds <= 3600:
            raise ValueError("wall_refresh_seconds: must be between 0.5 and 3600")
        if not 0 < self.session_idle_minutes <= 24 * 60:
            raise ValueError("session_idle_minutes: must be more than 0 and at most a day")
        if not 0 < self.session_max_hours <= 24 * 7:
            raise ValueError("session_max_hours: must be more than 0 and at most a week")
        if self.signin_failure_rate < 0 or not 1 <= self.signin_failure_burst <= 1000:
            raise ValueError(
                "signin_failure_rate: must not be negative (signin_failure_burst 1-1000)"
            )
        if not 0 < self.feed_retention_hours <= 24 * 365:
            raise ValueError("feed_retention_hours: must be more than 0 and at most a year")
        if not 0.01 <= self.stream_poll_interval <= 10:
            raise ValueError("stream_poll_interval: must be between 0.01 and 10 seconds")
        if not 0.5 <= self.stream_ping_interval <= 300:
            raise ValueError("stream_ping_interval: must be between 0.5 and 300 seconds")
        if not 1 <= self.stream_max_per_token <= 1000:
            raise ValueError("stream_max_per_token: must be between 1 and 1000")
        if self.alarm_interval < 0 or self.agent_offline_alarm <= 0:
            raise ValueError("alarm_interval: must not be negative (agent_offline_alarm > 0)")
        if not 0.1 <= self.presence_interval <= 3600 or not 1 <= self.presence_missed <= 1000:
            raise ValueError(
                "presence_interval: must be between 0.1 and 3600 seconds (presence_missed 1-1000)"
            )
        for kind in ALARM_KINDS:
            value = getattr(self, f"alarm_severity_{kind}")
            if value not in {s.value for s in Severity}:
                raise ValueError(
                    f"alarm_severity_{kind}: {value!r} is not one of critical, warning, info"
                )
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level: must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format: must be one of {', '.join(LOG_FORMATS)}")

    def session_rules(self) -> SessionRules:
        return SessionRules(
            idle=timedelta(minutes=self.session_idle_minutes),
            absolute=timedelta(hours=self.session_max_hours),
        )

    def alarm_severities(self) -> Mapping[str, Severity]:
        return MappingProxyType(
            {kind: Severity(getattr(self, f"alarm_severity_{kind}")) for kind in ALARM_KINDS}
        )

    def check_files(self) -> None:
        """At start-up: the TLS files exist, parse and match (ConfigError naming the key)."""
        try:
            check_client_tls(self.tls_ca, self.tls_cert, self.tls_key)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise ConfigError("settings", key, message) from None

    def policy(self) -> Policy:
        limits = {
            basis: getattr(self, f"limit_{basis.value}")
            for basis in LegalBasis
            if hasattr(self, f"limit_{basis.value}")
        }
        return Policy(
            limit_hours=MappingProxyType(limits),
            entry_minutes_booked=self.entry_minutes_booked,
            entry_minutes_walk_in=self.entry_minutes_walk_in,
            sobering_minutes=self.sobering_minutes,
            exit_minutes=self.exit_minutes,
        )

    def station_fences(self) -> tuple[StationFence, ...]:
        return parse_stations(self.map_stations)

    def van_rules(self) -> VanRules | None:
        if self.centre_lat is None or self.centre_lon is None:
            return None
        return VanRules((self.centre_lat, self.centre_lon), self.arrival_radius_m)

    def thresholds(self) -> ClockThresholds:
        return ClockThresholds(
            self.custody_yellow_fraction,
            self.custody_orange_fraction,
            self.custody_orange_within_minutes,
            self.custody_red_before_minutes,
        )

    @property
    def broker_url(self) -> BrokerUrl:
        return parse_broker_url(self.broker)

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, "listen")
