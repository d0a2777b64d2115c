"""Backups and restores of the platform database (`make db-backup`, `make db-restore`).

The command line is `python -m scripts.backup` (`cli.py`: its help says what each file is).
The parts, by responsibility:

- `common.py`: file naming (UTC stamps, `.partial` until complete), `BackupError`, the
  PostgreSQL client tools;
- `plan.py`: whether a single pg_dump fits the lock table (`LockBudget`), the tenant schemas;
- `dump.py`: whole-database dumps (one file, or per schema from one snapshot), the roles file,
  one tenant's dump, retention (`prune`);
- `redis_rdb.py`: the Redis RDB taken with every whole-database dump;
- `restore.py`: pg_restore with the tenant-code audit between definitions and data
  (`restore_checked`), roles files, `RestoreResult`;
- `restore_schema.py`: one tenant, into a scratch schema or in place;
- `restore_db.py`: the whole database, into a new database or in place;
- `checksum.py`: rows and md5 per table, what restore drills compare.
"""

from scripts.backup.checksum import fingerprint_digest, table_fingerprints
from scripts.backup.common import (
    BASE_FILE,
    MANIFEST,
    PARTIAL,
    STAMP_FORMAT,
    BackupError,
    Server,
    pg_tool,
    run_tool,
    stamp,
)
from scripts.backup.dump import DumpResult, dump_database, dump_roles, dump_tenant, prune
from scripts.backup.plan import LockBudget, lock_budget, tenant_schemas
from scripts.backup.redis_rdb import REDIS_PREFIX, dump_redis, prune_redis
from scripts.backup.restore import (
    RestoreResult,
    TenantCodeInBackupError,
    apply_roles,
    restore_checked,
)
from scripts.backup.restore_db import restore_database
from scripts.backup.restore_schema import restore_tenant

__all__ = [
    "BASE_FILE",
    "MANIFEST",
    "PARTIAL",
    "REDIS_PREFIX",
    "STAMP_FORMAT",
    "BackupError",
    "DumpResult",
    "LockBudget",
    "RestoreResult",
    "Server",
    "TenantCodeInBackupError",
    "apply_roles",
    "dump_database",
    "dump_redis",
    "dump_roles",
    "dump_tenant",
    "fingerprint_digest",
    "lock_budget",
    "pg_tool",
    "prune",
    "prune_redis",
    "restore_checked",
    "restore_database",
    "restore_tenant",
    "run_tool",
    "stamp",
    "table_fingerprints",
    "tenant_schemas",
]
