"""A throwaway PostgreSQL cluster for tests and benchmarks.

``initdb`` into a temporary directory, ``pg_ctl start`` on a loopback port, databases made on
demand, everything removed by :meth:`ThrowawayPostgres.stop`. It uses the server binaries on
the machine (Debian's ``postgresql`` package: ``/usr/lib/postgresql/<version>/bin``, or
``$GATEWAY_PG_BINDIR``). PostgreSQL refuses to run as root, so when started as root the
cluster runs as the ``postgres`` system user (or ``nobody`` when there is none) in a
directory handed to that user.

    with ThrowawayPostgres() as pg:
        url = pg.create_database("t1")   # postgresql+asyncpg://gateway@127.0.0.1:PORT/t1
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

USER = "gateway"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: tests trade durability for speed; benchmarks keep PostgreSQL's defaults (fsync on)
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed on this machine."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``/``postgres`` (the newest version), if any."""
    env = os.environ.get("GATEWAY_PG_BINDIR")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """One temporary cluster: :meth:`start`, :meth:`create_database`, :meth:`stop`."""

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                "`postgresql` package or set GATEWAY_PG_BINDIR"
            )
        self.bindir = bindir
        self.settings = {
            "max_connections": "300",
            "listen_addresses": "127.0.0.1",
            **({} if durable else FAST_SETTINGS),
            **(settings or {}),
        }
        self.port = 0
        self.dir: Path | None = None
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    self._run_as = pwd.getpwnam(name)
                    break

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> ThrowawayPostgres:
        self.dir = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        if self._run_as is not None:
            os.chown(self.dir, self._run_as.pw_uid, self._run_as.pw_gid)
        data = self.dir / "data"
        self._server(
            "initdb", "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-locale",
            *(["--no-sync"] if self.settings.get("fsync") == "off" else []),
        )  # fmt: skip
        last: subprocess.CalledProcessError | None = None
        for _ in range(3):  # a port found free may be taken before the server binds it
            self.port = _free_port()
            opts = [f"-p {self.port}", f"-k {self.dir}"]
            opts += [f"-c {k}={v}" for k, v in self.settings.items()]
            try:
                self._server(
                    "pg_ctl", "start", "-D", str(data), "-w", "-t", "60",
                    "-l", str(self.dir / "server.log"), "-o", " ".join(opts),
                )  # fmt: skip
                return self
            except subprocess.CalledProcessError as exc:
                last = exc
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start: {self._tail(last)}")

    def stop(self) -> None:
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                self._server("pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with ``psql`` (as the cluster's superuser); returns its unaligned output."""
        psql = self.bindir / "psql"
        exe = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
        done = subprocess.run(
            [exe, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", USER, "-d", database, "-c", sql],
            capture_output=True, text=True, check=False, env=self._env(),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    # -- helpers ---------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = "C.UTF-8"
        return env

    def _server(self, tool: str, *args: str) -> None:
        kwargs: dict[str, Any] = {}
        if self._run_as is not None:
            kwargs = {
                "user": self._run_as.pw_uid,
                "group": self._run_as.pw_gid,
                "extra_groups": [],
            }
        subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=True,
            env=self._env(),
            cwd=str(self.dir),
            timeout=120,
            **kwargs,
        )

    def _tail(self, exc: subprocess.CalledProcessError | None) -> str:
        parts = [] if exc is None else [str(exc.stderr or exc.stdout or exc).strip()]
        if self.dir is not None and (self.dir / "server.log").exists():
            parts.append((self.dir / "server.log").read_text(errors="replace")[-2000:])
        return " | ".join(p for p in parts if p)


def wait_ready(pg: ThrowawayPostgres, timeout: float = 30.0) -> None:
    """Block until the server answers a query (after a start or a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pg.psql("SELECT 1")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
