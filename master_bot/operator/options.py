"""Knobs of the operator bot (tests shrink them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Options:
    page_size: int = 8  # tenants per /clients page
    logs_lines: int = 50  # /logs without a number
    logs_inline_max: int = 3000  # longer logs go as a document
    max_log_lines: int = 10_000
