"""A small browser for tests, on http.client: a cookie jar, forms, no redirects followed, and
the raw ``Set-Cookie`` headers kept so that tests can read each cookie's flags."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from central.auth import Role
from central.store import connect, migrate, write_transaction
from central.users import create_user

PASSWORD = "correct horse battery"
_HIDDEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_cookies(self) -> dict[str, str]:
        """Each cookie set by this answer: name -> its whole ``Set-Cookie`` line."""
        return {
            value.split("=", 1)[0]: value
            for key, value in self.headers
            if key.lower() == "set-cookie"
        }

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def csrf_field(self) -> str | None:
        found = _HIDDEN.search(self.body)
        return None if found is None else found[1]

    @property
    def csrf_meta(self) -> str | None:
        found = _META.search(self.body)
        return None if found is None else found[1]


@dataclass
class Browser:
    """One browser: its cookies, and the client address it connects from (any 127.x.y.z)."""

    base: str
    source: str = "127.0.0.1"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        json_body: object = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        parts = urllib.parse.urlsplit(self.base)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30, source_address=(self.source, 0)
        )
        sent = dict(headers or {})
        body: bytes | None = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(
                response.status,
                response.getheaders(),
                response.read().decode("utf-8", errors="replace"),
            )
        finally:
            connection.close()
        for line in answer.set_cookies().values():
            for name, morsel in SimpleCookie(line).items():
                if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def sign_in(self, name: str, password: str = PASSWORD) -> Answer:
        """Open the sign-in form and send it, as a person does."""
        page = self.get("/signin")
        assert page.status == 200, page
        token = page.csrf_field
        assert token is not None
        return self.request(
            "POST", "/signin", form={"csrf_token": token, "name": name, "password": password}
        )

    @property
    def session(self) -> str | None:
        return self.cookies.get("precinct_session")


def add_user(db: Path, name: str, role: Role, station: str | None = None) -> None:
    migrate(db)
    conn = connect(db)
    try:
        with write_transaction(conn):
            create_user(conn, name=name, role=role, station=station, password=PASSWORD)
    finally:
        conn.close()
