"""What an import did, per file and per table: read, imported, already there, skipped (why)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scripts.legacy_import.reading import TABLES


@dataclass(slots=True)
class TableReport:
    read: int = 0
    imported: int = 0
    existing: int = 0
    skipped: list[str] = field(default_factory=list)
    missing: bool = False


@dataclass(slots=True)
class FileReport:
    path: str
    tenant_id: str
    dry_run: bool
    tables: dict[str, TableReport] = field(
        default_factory=lambda: {t: TableReport() for t in TABLES}
    )
    customers_from_bookings: int = 0
    # The staff member who took the imported bookings; created by the import or not; how many
    # imported services were added to their list.
    staff_id: int | None = None
    staff_name: str = ""
    staff_created: bool = False
    staff_services: int = 0
    error: str | None = None
    seconds: float = 0.0


def counts(report: FileReport) -> dict[str, dict[str, int]]:
    return {
        name: {
            "read": t.read,
            "imported": t.imported,
            "existing": t.existing,
            "skipped": len(t.skipped),
        }
        for name, t in report.tables.items()
    }
