"""Translations of the bots: extract message ids, update the catalogs, compile, check.

    python -m scripts.i18n update    # extract from the code, merge into every .po, compile .mo
    python -m scripts.i18n check     # fail when a Russian translation is missing or .mo is stale

Message ids are English. Russian (`ru`, the default) must translate every one; the English
catalog may leave them empty (the id is the English text).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "client_bot": ROOT / "client_bot" / "locales",
    "sales_bot": ROOT / "sales_bot" / "locales",
}
LOCALES = ("ru", "en")
REQUIRED = ("ru",)
KEYWORDS = {"_": None, "__": None, "gettext": None}


def extract(package: str) -> Catalog:
    template = Catalog(project="botfleet", fuzzy=False)
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        template.add(message, None, [], context=context)
    return template


def po_path(locales: Path, locale: str) -> Path:
    return locales / locale / "LC_MESSAGES" / "messages.po"


def load(path: Path, locale: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=locale, project="botfleet")
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def update(packages: list[str] | None = None) -> None:
    for package, locales in PACKAGES.items():
        if packages and package not in packages:
            continue
        template = extract(package)
        for locale in LOCALES:
            path = po_path(locales, locale)
            catalog = load(path, locale)
            catalog.update(template, no_fuzzy_matching=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                write_po(fh, catalog, omit_header=False, no_location=True, width=100)
            path.with_suffix(".mo").write_bytes(mo_bytes(catalog))
            missing = [m.id for m in catalog if m.id and not m.string]
            print(f"{path.relative_to(ROOT)}: {len(catalog)} messages, {len(missing)} untranslated")


def check() -> int:
    problems: list[str] = []
    for package, locales in PACKAGES.items():
        template = extract(package)
        for locale in LOCALES:
            path = po_path(locales, locale)
            catalog = load(path, locale)
            ids = {m.id for m in catalog if m.id}
            for message in template:
                if not message.id:
                    continue
                if message.id not in ids:
                    problems.append(f"{path.relative_to(ROOT)}: missing {message.id!r}")
                elif locale in REQUIRED and not catalog[message.id].string:
                    problems.append(f"{path.relative_to(ROOT)}: untranslated {message.id!r}")
            mo = path.with_suffix(".mo")
            if not mo.exists() or mo.read_bytes() != mo_bytes(catalog):
                problems.append(
                    f"{mo.relative_to(ROOT)}: stale, run `python -m scripts.i18n update`"
                )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.i18n", description=__doc__)
    parser.add_argument("command", choices=["update", "check"])
    parser.add_argument(
        "packages", nargs="*", choices=[[], *PACKAGES], help="update only these (default: all)"
    )
    args = parser.parse_args()
    if args.command == "update":
        update(args.packages)
        return 0
    return check()


if __name__ == "__main__":
    raise SystemExit(main())
