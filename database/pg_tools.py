"""PostgreSQL's client programs (pg_dump, pg_dumpall, pg_restore, psql), found and run one way
for the master's final backups (`master_bot/backup.py`) and the operator's backup/restore
(`scripts/backup/`): the password only in PGPASSWORD (never on a command line or in an
error), a minimal environment, output files private (0600), a time limit."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.files import PRIVATE_UMASK
from core.logs import redact
from database.dsn import parse_dsn, split_password

# What a client program may inherit: how to find programs, locale, TLS to the server.
_INHERITED = {"PATH", "HOME", "LANG", "LC_ALL", "PGSSLMODE", "PGSSLROOTCERT", "TZ"}


class PgToolError(RuntimeError):
    """A client program is missing or failed; the message says why (never a password)."""


def pg_tool(name: str, error: type[Exception] = PgToolError) -> str:
    """Path of a PostgreSQL client program: $PG_BINDIR, then PATH, then the newest installed."""
    bindir = os.environ.get("PG_BINDIR")
    if bindir and (Path(bindir) / name).is_file():
        return str(Path(bindir) / name)
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return str(versions[-1])
    raise error(
        f"{name} is not installed: install the PostgreSQL client tools (Debian/Ubuntu: "
        "apt-get install postgresql-client) or set PG_BINDIR"
    )


@dataclass(frozen=True, slots=True)
class PgServer:
    """Where to connect, split so that the password never appears on a command line."""

    dsn: str

    @property
    def database(self) -> str:
        return parse_dsn(self.dsn).database

    @property
    def password(self) -> str | None:
        return split_password(self.dsn)[1]

    def url(self, database: str | None = None) -> str:
        """The DSN without its password (for --dbname), optionally for another database."""
        url = self.dsn if database is None else parse_dsn(self.dsn).with_database(database)
        return split_password(url)[0]

    def with_database(self, database: str) -> str:
        return parse_dsn(self.dsn).with_database(database)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _INHERITED}
        env.setdefault("PATH", "/usr/bin:/bin")
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


async def run_pg_tool(
    server: PgServer,
    argv: Sequence[str],
    *,
    what: str,
    limit: float = 3600,
    error: type[Exception] = PgToolError,
) -> str:
    """Run a client program; `error` with the tail of its stderr when it fails or overruns."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=server.env(),
        umask=PRIVATE_UMASK,  # dumps and roles files: 0600
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise error(f"{what} took longer than {limit:.0f} s") from None
    if process.returncode != 0:
        reason = redact(err.decode(errors="replace").strip(), [server.password or ""])
        raise error(f"{what} failed: {reason[-1500:]}")
    return out.decode(errors="replace")


async def pg_dump(
    server: PgServer,
    file: Path,
    *,
    schemas: Sequence[str] = (),
    exclude_schemas: Sequence[str] = (),
    snapshot: str | None = None,
    database: str | None = None,
    keep_owners: bool = True,
    keep_privileges: bool = True,
    binary: str | None = None,
    what: str | None = None,
    limit: float = 3600,
    error: type[Exception] = PgToolError,
) -> None:
    """`pg_dump --format=custom` of `server`'s database (or `database`) into `file`.

    `keep_owners=False` (--no-owner) for a dump restored where its roles may not exist (the
    master's final backup of a tenant being removed, a schema copied under another name);
    `keep_privileges=False` (--no-privileges) drops GRANTs as well."""
    argv = [binary or pg_tool("pg_dump", error), "--format=custom"]
    if snapshot is not None:
        argv.append(f"--snapshot={snapshot}")
    if not keep_owners:
        argv.append("--no-owner")
    if not keep_privileges:
        argv.append("--no-privileges")
    argv += [f"--schema={s}" for s in schemas]
    argv += [f"--exclude-schema={s}" for s in exclude_schemas]
    argv += [f"--file={file}", f"--dbname={server.url(database)}"]
    await run_pg_tool(
        server,
        argv,
        what=what or f"pg_dump of {', '.join(schemas) or database or server.database}",
        limit=limit,
        error=error,
    )
