"""The edge agent's one settings object, validated at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devices.base import DeviceConfig
from edge_agent.broker_url import BrokerUrl, parse_broker_url
from edge_agent.settings_source import ConfigError, parse_host_port
from edge_agent.tls import check_client_tls, check_tls_keys
from edge_agent.wire import is_valid_name
from monitoring.logs import LOG_FORMATS


@dataclass(frozen=True, slots=True)
class AgentSettings:
    id: str
    data_dir: Path
    broker: str = "mqtt://127.0.0.1:1883"
    station: str | None = None
    metrics_listen: str | None = None
    # Synthetic telemetry readings per second (0: off); for load tests and the demo.
    synthetic: float = 0.0
    # Every this many synthetic readings, one synthetic event as well (0: none).
    synthetic_event_every: int = 100
    # Rows the outbox holds before telemetry is dropped (oldest first); events are never dropped.
    outbox_max: int = 200_000
    # Acknowledged messages kept so that the centre can ask for a lost range again, at most
    # this many rows and this many payload bytes.
    replay_keep: int = 100_000
    replay_keep_bytes: int = 64 << 20
    # The write-ahead log is cut back to this after each checkpoint (and checkpointed whenever
    # it is found larger).
    wal_max_bytes: int = 16 << 20
    # Disk space held back in a ballast file beside the outbox and released when the disk is
    # full, so that events still commit (0: none).
    disk_reserve_bytes: int = 8 << 20
    # How often the agent checks its disk (free space, the log's size) in seconds.
    disk_check_interval: float = 5.0
    # PRAGMA synchronous for the outbox: NORMAL survives a killed process, FULL also power loss.
    outbox_sync: str = "NORMAL"
    # After a reconnect, the backlog drains at most this many messages per second so that live
    # readings keep flowing.
    backlog_rate: float = 2000.0
    # QoS 1 publishes awaiting PUBACK at once.
    publish_window: int = 200
    publish_timeout: float = 10.0
    keepalive: int = 30
    connect_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    log_level: str = "info"
    # text (one line per record) or json (one object per line); see monitoring/logs.py.
    log_format: str = "text"
    # TLS (an mqtts:// broker): the CA that signed the broker's certificate (unset: the system's
    # CAs), and this agent's certificate (common name = id) and key, from precinct pki issue.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Warn in the log when the certificate expires within this many days.
    tls_expiry_warning_days: float = 30.0
    # The agent's own health (outbox, disk, certificate) goes to the centre in every birth and
    # every health_interval seconds while connected (0: in births only).
    health_interval: float = 30.0
    # [[devices]] tables: kind, id, transport and the options of that device class.
    devices: tuple[DeviceConfig, ...] = ()

    def __post_init__(self) -> None:
        if not is_valid_name(self.id):
            raise ValueError(f"id: {self.id!r} must be 1-64 letters, digits or _.:-")
        if self.station is not None and not is_valid_name(self.station):
            raise ValueError(f"station: {self.station!r} must be 1-64 letters, digits or _.:-")
        try:
            parse_broker_url(self.broker)
        except ValueError as exc:
            raise ValueError(f"broker: {exc}") from None
        if self.metrics_listen is not None:
            parse_host_port(self.metrics_listen, "metrics_listen")
        positive = {
            "outbox_max": self.outbox_max,
            "backlog_rate": self.backlog_rate,
            "publish_window": self.publish_window,
            "publish_timeout": self.publish_timeout,
            "keepalive": self.keepalive,
            "connect_timeout": self.connect_timeout,
            "backoff_initial": self.backoff_initial,
            "backoff_max": self.backoff_max,
            "wal_max_bytes": self.wal_max_bytes,
            "disk_check_interval": self.disk_check_interval,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{key}: must be greater than 0")
        ids = [device.id for device in self.devices]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"devices: device id {duplicated[0]!r} is used twice")
        for device in self.devices:
            if not is_valid_name(device.id):
                raise ValueError(f"devices: device id {device.id!r} is not a valid name")
        if self.replay_keep < 0:
            raise ValueError("replay_keep: must not be negative")
        if self.replay_keep_bytes < 0:
            raise ValueError("replay_keep_bytes: must not be negative")
        if self.disk_reserve_bytes < 0:
            raise ValueError("disk_reserve_bytes: must not be negative")
        if self.health_interval < 0:
            raise ValueError("health_interval: must not be negative (0: in births only)")
        if self.synthetic < 0 or self.synthetic_event_every < 0 or self.backoff_jitter < 0:
            raise ValueError("synthetic: rates and jitter must not be negative")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level: must be one of debug, info, warning, error")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format: must be one of {', '.join(LOG_FORMATS)}")
        if self.outbox_sync.upper() not in ("NORMAL", "FULL"):
            raise ValueError("outbox_sync: must be NORMAL or FULL")
        self._check_tls()

    def _check_tls(self) -> None:
        check_tls_keys(parse_broker_url(self.broker).tls, self.tls_ca, self.tls_cert, self.tls_key)
        if self.tls_expiry_warning_days < 0:
            raise ValueError("tls_expiry_warning_days: must not be negative")

    def check_files(self) -> None:
        """At start-up: the TLS files exist, parse, match, and name this agent (ConfigError)."""
        try:
            certificate = check_client_tls(self.tls_ca, self.tls_cert, self.tls_key)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise ConfigError("settings", key, message) from None
        # The broker takes the common name as the user name: any other name than the agent's
        # own would have every publish silently dropped by the ACL.
        if certificate is not None and certificate.common_name != self.id:
            raise ConfigError(
                "settings",
                "tls_cert",
                f"the certificate is for {certificate.common_name!r}, not for this agent "
                f"({self.id!r})",
            )

    @property
    def broker_url(self) -> BrokerUrl:
        return parse_broker_url(self.broker)
