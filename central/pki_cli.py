"""``precinct pki``: the broker's CA (init), agents' certificates (issue), the CRL (revoke).

Mosquitto 2.0.11 reads ``crlfile`` at start and again on SIGHUP, for new connections only: after
``pki revoke``, copy the CRL to the broker and reload it; a connection the revoked certificate
already holds stays open until it ends (restart the broker to cut it at once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK = 0
EXIT_USAGE = 2
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
CA_NAME = "Precinct broker CA"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pki init``, ``pki issue`` and ``pki revoke`` to the ``precinct`` command."""
    pki = commands.add_parser(
        "pki",
        help="certificates for the broker: CA, agents, revocation",
        description="A small CA for the broker's TLS listener: each agent's certificate names "
        "the agent (its common name is the broker user name).",
    )
    pki_commands = pki.add_subparsers(dest="pki_command", required=True, metavar="COMMAND")

    init = pki_commands.add_parser(
        "init",
        help="create the CA, the broker's certificate and an empty CRL",
        description="Create DIR with a CA key and self-signed certificate, a certificate for "
        "the broker, and an empty CRL. Refuses a DIR that already holds a CA.",
    )
    init.add_argument("--dir", type=Path, required=True, metavar="DIR", help="the CA directory")
    init.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="a host name or IP address clients use for the broker; repeat for more "
        f"(default: {', '.join(DEFAULT_HOSTS)})",
    )
    init.add_argument(
        "--days",
        type=int,
        default=3650,
        help="validity of the CA, the broker certificate and the CRL (default %(default)s)",
    )
    init.set_defaults(handler=_init)

    issue = pki_commands.add_parser(
        "issue",
        help="issue a key and certificate for an agent (or the central service)",
        description="Write DIR/clients/AGENT_ID.key (mode 0600) and .crt, whose common name "
        "is AGENT_ID. Issuing again for the same id renews: new key, new certificate "
        "(the old certificate stays valid until it expires or is revoked).",
    )
    issue.add_argument("--dir", type=Path, required=True, metavar="DIR", help="the CA directory")
    issue.add_argument("agent_id", metavar="AGENT_ID", help="the agent id (precinct-central …)")
    issue.add_argument(
        "--days", type=float, default=365.0, help="validity in days (default %(default)s)"
    )
    issue.add_argument(
        "--not-before",
        metavar="TIME",
        help="start of validity, ISO 8601 (default: now), e.g. for a handover date",
    )
    issue.set_defaults(handler=_issue)

    revoke = pki_commands.add_parser(
        "revoke",
        help="revoke every certificate of an agent and rewrite the CRL",
        description="Record every certificate issued to AGENT_ID as revoked and write "
        "DIR/crl.pem. Copy the CRL to the broker and send it SIGHUP (systemctl reload "
        "mosquitto): new connections are checked against it; one already open stays open "
        "until it ends (restart the broker to cut it at once).",
    )
    revoke.add_argument("--dir", type=Path, required=True, metavar="DIR", help="the CA directory")
    revoke.add_argument("agent_id", metavar="AGENT_ID")
    revoke.set_defaults(handler=_revoke)


def _fail(message: str) -> int:
    print(f"precinct pki: {message}", file=sys.stderr)
    return EXIT_USAGE


def _init(args: argparse.Namespace) -> int:
    from central import pki
    from central.pki_files import KEY_MODE, PUBLIC_MODE, PkiDir, write_file

    hosts: Sequence[str] = args.host or DEFAULT_HOSTS
    now = datetime.now(UTC)
    directory = PkiDir(args.dir)
    try:
        directory.create()
        ca = pki.new_authority(CA_NAME, now, args.days)
        server = pki.issue_server(ca.key_pem, ca.cert_pem, hosts, now, args.days)
        crl = pki.build_crl(ca.key_pem, ca.cert_pem, [], now, number=1)
    except pki.PkiError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot create {args.dir}: {exc.strerror}")
    write_file(directory.ca_key, ca.key_pem, KEY_MODE)
    write_file(directory.ca_cert, ca.cert_pem, PUBLIC_MODE)
    write_file(directory.server_key, server.key_pem, KEY_MODE)
    write_file(directory.server_cert, server.cert_pem, PUBLIC_MODE)
    write_file(directory.crl, crl, PUBLIC_MODE)
    directory.write_index([])
    print(f"CA {directory.ca_cert} (valid until {ca.not_after:%Y-%m-%d})")
    print(f"broker {directory.server_cert} for {', '.join(hosts)}")
    print(f"CRL {directory.crl}")
    return EXIT_OK


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("give a time zone (Z or +HH:MM)")
    return value.astimezone(UTC)


def _issue(args: argparse.Namespace) -> int:
    from central import pki
    from central.pki_files import KEY_MODE, PUBLIC_MODE, IndexEntry, PkiDir, write_file
    from edge_agent.wire import is_valid_name

    if not is_valid_name(args.agent_id):
        return _fail(f"{args.agent_id!r} is not a valid agent id (1-64 letters, digits or _.:-)")
    if not 0 < args.days <= 36500:
        return _fail("--days must be more than 0 and at most 36500")
    try:
        not_before = _parse_time(args.not_before) if args.not_before else datetime.now(UTC)
    except ValueError as exc:
        return _fail(f"--not-before: {exc}")
    directory = PkiDir(args.dir)
    try:
        ca_key, ca_cert = directory.read_ca()
        entries = directory.index()
        issued = pki.issue_client(ca_key, ca_cert, args.agent_id, not_before, args.days)
    except pki.PkiError as exc:
        return _fail(str(exc))
    directory.clients.mkdir(mode=0o700, exist_ok=True)
    key_path, cert_path = directory.client_key(args.agent_id), directory.client_cert(args.agent_id)
    write_file(key_path, issued.key_pem, KEY_MODE)
    write_file(cert_path, issued.cert_pem, PUBLIC_MODE)
    directory.write_index([*entries, IndexEntry(args.agent_id, issued.serial, issued.not_after)])
    print(f"key {key_path}")
    until = f"{issued.not_after:%Y-%m-%d %H:%M} UTC"
    print(f"certificate {cert_path} (serial {issued.serial:x}, valid until {until})")
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    from central import pki
    from central.pki_files import PUBLIC_MODE, PkiDir, write_file
    from edge_agent.wire import is_valid_name

    if not is_valid_name(args.agent_id):
        return _fail(f"{args.agent_id!r} is not a valid agent id (1-64 letters, digits or _.:-)")
    directory = PkiDir(args.dir)
    now = datetime.now(UTC)
    try:
        ca_key, ca_cert = directory.read_ca()
        if not any(e.name == args.agent_id for e in directory.index()):
            return _fail(f"no certificate was issued to {args.agent_id!r} in {args.dir}")
        newly, revoked = directory.revoke(args.agent_id, now)
        crl = pki.build_crl(ca_key, ca_cert, revoked, now, number=int(now.timestamp()))
    except pki.PkiError as exc:
        return _fail(str(exc))
    write_file(directory.crl, crl, PUBLIC_MODE)
    for entry in newly:
        print(f"revoked {entry.name} serial {entry.serial:x}")
    if not newly:
        print(f"{args.agent_id} had no certificate left to revoke")
    print(
        f"CRL {directory.crl} ({len(revoked)} revoked): copy it to the broker, reload it (SIGHUP)"
    )
    return EXIT_OK
