"""Files only the platform's own user may read: backups hold every tenant's data and the roles
file holds password hashes, so they are written 0600 in a 0700 folder."""

from __future__ import annotations

from pathlib import Path

PRIVATE_UMASK = 0o077  # for the client programs (pg_dump, pg_dumpall) that write them


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) if missing and make it 0700, also when it existed."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
