"""`python -m scripts.backup`: see scripts/backup/cli.py."""

from scripts.backup.cli import main

raise SystemExit(main())
