"""The one pg_dump wrapper (database/pg_tools.py) and the one DSN password stripper
(database/dsn.py), used by the master's final backups and scripts/backup/."""

from __future__ import annotations

from pathlib import Path

import pytest

from database.dsn import split_password
from database.pg_tools import PgServer, PgToolError, pg_dump
from master_bot.backup import BackupError, dump_schema

PASSWORD = "s3cr%t-p@ss"
DSN = "postgresql://platform:s3cr%25t-p%40ss@db.internal:5433/botfleet?sslmode=prefer"


def test_split_password_keeps_everything_but_the_password():
    url, password = split_password(DSN)
    assert password == PASSWORD
    assert url == "postgresql://platform@db.internal:5433/botfleet?sslmode=prefer"
    assert split_password("postgresql://db/botfleet") == ("postgresql://db/botfleet", None)
    assert PgServer(DSN).url("client_copy") == (
        "postgresql://platform@db.internal:5433/client_copy?sslmode=prefer"
    )


def _fake_pg_dump(tmp_path: Path, *, fail: bool) -> Path:
    """A pg_dump that records its argv and PGPASSWORD (and, when `fail`, complains on stderr
    the way a real one may, quoting the password)."""
    script = tmp_path / "pg_dump"
    tail = 'echo "FATAL: password $PGPASSWORD refused" >&2; exit 1' if fail else "exit 0"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
        f'printf "%s" "$PGPASSWORD" > {tmp_path}/pgpassword\n'
        'for a in "$@"; do case $a in --file=*) echo dump > "${a#--file=}";; esac; done\n'
        f"{tail}\n"
    )
    script.chmod(0o755)
    return script


async def test_the_password_goes_only_to_pgpassword_and_never_into_an_error(tmp_path):
    binary = _fake_pg_dump(tmp_path, fail=False)
    await pg_dump(PgServer(DSN), tmp_path / "x.dump", schemas=["client_001"], binary=str(binary))
    argv = (tmp_path / "argv").read_text().splitlines()
    assert (tmp_path / "pgpassword").read_text() == PASSWORD
    assert PASSWORD not in "".join(argv) and "s3cr%25t" not in "".join(argv)
    assert argv == [
        "--format=custom",
        "--schema=client_001",
        f"--file={tmp_path / 'x.dump'}",
        "--dbname=postgresql://platform@db.internal:5433/botfleet?sslmode=prefer",
    ]

    failing = _fake_pg_dump(tmp_path, fail=True)
    with pytest.raises(PgToolError, match="pg_dump of client_001 failed") as info:
        await pg_dump(
            PgServer(DSN), tmp_path / "y.dump", schemas=["client_001"], binary=str(failing)
        )
    assert PASSWORD not in str(info.value) and "[REDACTED]" in str(info.value)


async def test_the_masters_final_backup_uses_it_without_owners(tmp_path):
    """The master's final backup: the same wrapper, --no-owner (the tenant's roles are dropped
    with it); a failed dump leaves no file and says why without the password."""
    binary = _fake_pg_dump(tmp_path, fail=False)
    target = await dump_schema(DSN, "client_001", tmp_path / "final", pg_dump=str(binary))
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:3] == ["--format=custom", "--no-owner", "--schema=client_001"]
    assert target.parent == tmp_path / "final" and target.name.startswith("client_001-")

    failing = _fake_pg_dump(tmp_path, fail=True)
    with pytest.raises(BackupError, match="pg_dump of client_001 failed") as info:
        await dump_schema(DSN, "client_001", tmp_path / "final", pg_dump=str(failing))
    assert PASSWORD not in str(info.value)
    assert [p.name for p in (tmp_path / "final").iterdir()] == [target.name]
