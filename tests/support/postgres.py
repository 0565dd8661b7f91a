"""Throwaway real PostgreSQL server for tests (SQLite would hide dialect bugs).

Uses the server binaries of Debian's `postgresql` package; no running system cluster needed.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .server import free_port, unavailable

DB_USER = "hitl"
DB_NAME = "hitl_test"


@dataclass(frozen=True)
class PostgresServer:
    """A running server; `url` is ready for SQLAlchemy's create_engine."""

    url: str
    port: int
    root: Path  # temp dir holding data, socket and log; gone after exit


def _bindir() -> Path:
    """Newest /usr/lib/postgresql/<version>/bin that has initdb."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not found:
        unavailable("PostgreSQL server binaries not found: install the Debian package `postgresql`", "HITL_REQUIRE_PG")
    return max(found, key=lambda b: tuple(int(x) for x in b.parent.name.split(".") if x.isdigit()))


def _run(cmd: list[str], root: Path) -> None:
    """Run a server binary; as root go through the postgres user because initdb/postgres refuse root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    result = subprocess.run(prefix + cmd, cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        log = root / "server.log"
        server_log = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}{server_log}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh server on a free 127.0.0.1 port with database `hitl_test`; stop and delete it on exit."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="hitl-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", DB_USER,
              "-E", "UTF8", "--no-locale", "--no-sync"], root)
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run([str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data),
              "-l", str(root / "server.log"), "-o", opts], root)
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DB_NAME}")
            yield PostgresServer(f"postgresql+psycopg://{DB_USER}@127.0.0.1:{port}/{DB_NAME}", port, root)
        finally:
            _run([str(bindir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(data)], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
