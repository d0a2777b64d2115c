"""`python -m scripts.migrate_to_postgres`: the legacy SQLite import under the name operators use
(`make import-legacy`, docs/operations.md). The code is the package scripts/legacy_import/; its
command line, with what is read and how it maps, is scripts/legacy_import/cli.py."""

from scripts.legacy_import.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
