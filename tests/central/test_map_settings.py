"""The wall map's settings: a tile URL template, a datum and stations' geofences, refused at
start-up with the key named when they cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.map_settings import StationFence, parse_stations
from central.settings import CentralSettings
from edge_agent.settings_source import ConfigError, load


def _settings(tmp_path: Path, **values: str) -> CentralSettings:
    config = tmp_path / "central.toml"
    lines = [f'db = "{tmp_path / "c.sqlite3"}"'] + [f"{k} = {v!r}" for k, v in values.items()]
    config.write_text("\n".join(lines).replace("'", '"') + "\n")
    return load(CentralSettings, config, {}, {})


def test_the_defaults_draw_no_basemap(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert (settings.map_tile_url, settings.map_crs, settings.station_fences()) == ("", "wgs84", ())


def test_a_tile_template_datum_and_stations_are_taken(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        map_tile_url="https://pgis.local:8443/tiles/{z}/{x}/{y}.png?style=day",
        map_crs="gcj02",
        map_attribution="市局 PGIS",
        map_stations="s1:31.20,121.44,300; s:2:31.25 , 121.47,250;",
    )
    assert settings.map_crs == "gcj02"
    assert settings.station_fences() == (
        StationFence("s1", 31.20, 121.44, 300.0),
        StationFence("s:2", 31.25, 121.47, 250.0),
    )


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("map_tile_url", "ftp://gis/{z}/{x}/{y}", "must start with http:// or https://"),
        ("map_tile_url", "https:///{z}/{x}/{y}", "name a host"),
        ("map_tile_url", "https://gis.local/tiles/{z}/{x}.png", "needs {y}"),
        ("map_tile_url", "https://gis.local/{z}/{x}/{y}.png onerror=x", "spaces"),
        ("map_tile_url", "https://gis.local/<{z}>/{x}/{y}", "not allowed"),
        ("map_tile_url", "https://gis.local/" + "a" * 2100 + "{z}{x}{y}", "longer than"),
        ("map_crs", "bd09", "'bd09' is not one of wgs84, gcj02"),
        ("map_crs", "WGS84", "is not one of"),
        ("map_attribution", "x" * 201, "longer than 200"),
        ("map_stations", "s1 31.2,121.4,300", "expected STATION:LAT,LON,RADIUS_M"),
        ("map_stations", "s1:31.2,121.4", "three numbers"),
        ("map_stations", "s1:31.2,121.4,nan", "three numbers"),
        ("map_stations", "s1:91,121.4,300", "not a position on Earth"),
        ("map_stations", "s1:31.2,121.4,5", "radius must be 10 to 50000 metres"),
        ("map_stations", "s1:31.2,121.4,300;s1:31.3,121.4,300", "given twice"),
        ("map_stations", "s 1:31.2,121.4,300", "station id"),
    ],
)
def test_an_unusable_map_setting_is_refused_naming_the_key(
    tmp_path: Path, key: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(tmp_path, **{key: value})
    assert refused.value.key == key
    assert says in str(refused.value)


def test_a_control_character_in_the_attribution_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="map_attribution: control characters"):
        CentralSettings(db=tmp_path / "c.sqlite3", map_attribution="GIS\x1b[31m")


def test_stations_past_the_limit_are_refused() -> None:
    many = ";".join(f"s{n}:31.2,121.4,300" for n in range(201))
    with pytest.raises(ValueError, match="map_stations: at most 200 stations"):
        parse_stations(many)
