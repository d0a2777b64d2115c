"""A second, throwaway PostgreSQL server for tests that need two (tenants across servers).

Started the way scripts/services.sh starts the first one: the installed binaries, initdb as the
`postgres` OS user when we are root (PostgreSQL refuses root), a generated superuser password,
scram-sha-256 over TCP on 127.0.0.1, on a free port, in a temporary folder; fsync off.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tests.support import free_port


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server binaries (initdb) are not installed")
    return Path(initdb).parent


@dataclass
class LocalPg:
    root: Path
    port: int
    password: str
    database: str

    @property
    def dsn(self) -> str:
        return (
            f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}/"
            f"{self.database}"
        )

    def _run(self, *argv: str, env: dict[str, str] | None = None) -> None:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False, env=env
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr[-1000:]}")

    def start(self) -> None:
        self._run(
            str(_bindir() / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        self._run(
            str(_bindir() / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"
        )


@contextmanager
def local_pg(database: str = "tenants") -> Iterator[LocalPg]:
    """A running PostgreSQL on a free port with database `database`; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="botfleet-pg2-"))
    os.chmod(root, 0o700)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    server = LocalPg(root, free_port(), secrets.token_hex(16), database)
    pwfile = root / "pw"
    pwfile.write_text(server.password)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    try:
        server._run(
            str(_bindir() / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=peer",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()
        with (root / "data" / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {server.port}\n"
                f"unix_socket_directories = '{root}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 50\n"
            )
        (root / "data" / "pg_hba.conf").write_text(
            "local all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        server.start()
        server._run(  # over TCP with the password: peer needs the OS user `postgres`
            str(_bindir() / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            f'CREATE DATABASE "{database}"',
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": server.password},
        )
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # not running: a test stopped it, or never started
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
