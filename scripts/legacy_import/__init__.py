"""The legacy SQLite import (`python -m scripts.migrate_to_postgres`, `make import-legacy`): what
it reads and how it maps is the command's help, `cli.py`. The parts, by responsibility:

- `reading.py`: the SQLite file, its four tables and their column aliases;
- `rows.py`: each legacy row parsed and checked (`Malformed` says why not);
- `writing.py`: the rows written into a tenant schema (`Importer`), re-runs mapped through
  control.legacy_import_map;
- `importing.py`: one file into one tenant in one transaction (`import_file`), dry runs;
- `report.py`: the per-table counts and reasons;
- `cli.py`: files and folders to tenants, the progress bar and the report tables.
"""

from scripts.legacy_import.importing import DEFAULT_TIMEZONE, import_file, tenant_timezone
from scripts.legacy_import.reading import TABLES, Legacy, read_legacy
from scripts.legacy_import.report import FileReport, TableReport, counts
from scripts.legacy_import.rows import (
    STATUS_MAP,
    Booking,
    Customer,
    Malformed,
    Service,
    parse_admin,
    parse_booking,
    parse_customer,
    parse_service,
)
from scripts.legacy_import.writing import Importer

__all__ = [
    "DEFAULT_TIMEZONE",
    "STATUS_MAP",
    "TABLES",
    "Booking",
    "Customer",
    "FileReport",
    "Importer",
    "Legacy",
    "Malformed",
    "Service",
    "TableReport",
    "counts",
    "import_file",
    "parse_admin",
    "parse_booking",
    "parse_customer",
    "parse_service",
    "read_legacy",
    "tenant_timezone",
]
