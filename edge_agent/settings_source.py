"""Typed settings from three sources: a TOML file, ``PRECINCT_*`` environment variables, flags.

A flag wins over the environment, which wins over the file, which wins over the default. Each
process declares one frozen dataclass; :func:`load` validates every key against it at start-up
and raises :class:`ConfigError` naming the file and the key, so a typo never becomes a silently
ignored setting.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

ENV_PREFIX = "PRECINCT_"

T = TypeVar("T")


class ConfigError(Exception):
    """A setting that cannot be used; ``source`` is the file (or ``environment``/``flags``)."""

    def __init__(self, source: str, key: str | None, message: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.key = key


def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return kind, False


def _coerce(value: Any, kind: Any, *, from_text: bool, source: str, key: str) -> Any:
    base, optional = _unwrap_optional(kind)
    if value is None or (from_text and optional and value == ""):
        if optional:
            return None
        raise ConfigError(source, key, "a value is required")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if from_text and str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if from_text and str(value).lower() in ("0", "false", "no", "off"):
                return False
        elif base is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if from_text:
                return int(str(value))
        elif base is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if from_text:
                return float(str(value))
        elif base is str:
            if isinstance(value, str):
                return value
        elif base is Path:
            if isinstance(value, str | Path):
                return Path(value)
        elif typing.get_origin(base) is tuple:
            # tuple[X, ...] of tables, X built by X.from_table: only a file can hold tables.
            item_type = typing.get_args(base)[0]
            if from_text:
                raise ConfigError(source, key, "can only be set in a config file")
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(source, key, "expected a list of tables ([[...]])")
            items = []
            for index, table in enumerate(value):
                try:
                    items.append(item_type.from_table(table))
                except ValueError as exc:
                    sub_key, _, message = str(exc).partition(": ")
                    raise ConfigError(source, f"{key}[{index}].{sub_key}", message) from None
            return tuple(items)
        else:
            raise TypeError(f"unsupported setting type {base!r}")
    except ValueError:
        pass
    expected = getattr(base, "__name__", str(base))
    raise ConfigError(source, key, f"expected {expected}, got {value!r}")


def load(
    cls: type[T],
    config_file: Path | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
) -> T:
    """Build ``cls`` from file, environment and flags; ``flags`` holds only flags actually given."""
    kinds = _field_types(cls)
    values: dict[str, Any] = {}
    if config_file is not None:
        source = str(config_file)
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(source, None, "no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(source, None, f"cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, None, f"not valid TOML: {exc}") from None
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name not in kinds:
                raise ConfigError(source, key, "unknown setting")
            values[name] = _coerce(value, kinds[name], from_text=False, source=source, key=key)
    for name, kind in kinds.items():
        env_key = ENV_PREFIX + name.upper()
        if env_key in environ:
            values[name] = _coerce(
                environ[env_key], kind, from_text=True, source="environment", key=env_key
            )
    for name, value in flags.items():
        if value is None:
            continue
        if name not in kinds:
            raise ConfigError("flags", name, "unknown setting")
        values[name] = _coerce(
            value, kinds[name], from_text=True, source="flags", key="--" + name.replace("_", "-")
        )
    missing = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        source = str(config_file) if config_file else "settings"
        raise ConfigError(source, missing[0], "required setting is missing")
    try:
        return cls(**values)
    except ValueError as exc:
        # __post_init__ checks cross-field rules and raises ValueError("key: message").
        key, _, message = str(exc).partition(": ")
        raise ConfigError(str(config_file) if config_file else "settings", key, message) from None


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{what}: expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port_text)
