"""Dependencies shared by the routers: a read-only store connection and the caller."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from central.api.gate import PRINCIPAL_STATE
from central.audit import Actor
from central.auth import Principal, Role, authenticate
from central.settings import CentralSettings
from central.store import connect
from edge_agent.outbox import is_disk_full

_bearer = HTTPBearer(auto_error=False)


def get_settings(request: Request) -> CentralSettings:
    settings: CentralSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[CentralSettings, Depends(get_settings)]


def get_zone(settings: SettingsDep) -> ZoneInfo:
    """The centre's time zone: what a day in a query means (``timezone``, checked at start-up)."""
    return ZoneInfo(settings.timezone)


ZoneDep = Annotated[ZoneInfo, Depends(get_zone)]


def get_db(settings: SettingsDep) -> Iterator[sqlite3.Connection]:
    conn = connect(settings.db, readonly=True)
    try:
        yield conn
    finally:
        conn.close()


DbDep = Annotated[sqlite3.Connection, Depends(get_db)]


def get_write_db(settings: SettingsDep) -> Iterator[sqlite3.Connection]:
    conn = connect(settings.db)
    try:
        yield conn
    finally:
        conn.close()


WriteDbDep = Annotated[sqlite3.Connection, Depends(get_write_db)]


def get_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller. ``/api/`` requests were authenticated by the gate before their body was read
    (:mod:`central.api.gate`); its answer is reused. ``credentials`` declares the bearer scheme
    in the OpenAPI, and authenticates a route the gate does not cover."""
    gated = getattr(request.state, PRINCIPAL_STATE, None)
    if isinstance(gated, Principal):
        return gated
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "bearer token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    conn = connect(settings.db, readonly=True)
    try:
        principal = authenticate(conn, credentials.credentials)
    finally:
        conn.close()
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Any:
    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {principal.role} may not use this resource"
            )
        return principal

    return Depends(check)


def actor_of(request: Request, principal: Principal) -> Actor:
    """Who acts, for the audit log: the token's name and role, from the client's address (the
    peer of the connection; a proxy's forwarding headers are not trusted)."""
    source = request.client.host if request.client is not None else "unknown"
    return Actor(name=principal.name, role=principal.role.value, source=source)


def store_writable() -> Iterator[None]:
    """Turn a write the full store refused into a 503 instead of a 500 (nothing was stored)."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "store disk full") from exc
        raise
