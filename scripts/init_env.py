"""`make env`: a `.env` for the compose stack, made from `.env.example` with fresh secrets.

    python -m scripts.init_env [--template .env.example] [--to .env] [--force]

Copies the template line by line and fills, where the template leaves them empty:
POSTGRES_PASSWORD, REDIS_PASSWORD, ENCRYPTION_KEYS (a new Fernet key), MASTER_API_TOKEN,
METRICS_TOKEN, WEB_JWT_KEYS (the owner's web's JWT signing key) and SALES_INTERNAL_TOKEN (the
web's "Renew / pay" through the sales bot); DATABASE_URL and REDIS_URL become the host tools' URLs of the compose servers
(127.0.0.1, with those passwords). Nothing else changes, so the operator still sets the bot
tokens, OPERATOR_IDS and the shop (or runs `make up TRIAL=1` without them).

The file is written 0600. An existing one is never replaced without `--force`: its
ENCRYPTION_KEYS decrypt every stored bot token, and a new key would lock them away.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

from core.secrets import generate_key

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# What `make up` and the operator tools cannot do without; the rest has defaults.
STILL_TO_FILL = (
    "MASTER_BOT_TOKEN",
    "OPERATOR_IDS",
    "SALES_BOT_TOKEN",
    "YOOKASSA_SHOP_ID",
    "YOOKASSA_SECRET_KEY",
)


def _secret() -> str:
    return secrets.token_urlsafe(32)


def _jwt_key() -> str:
    """A signing key for the owner's web, as `python -m web.tokens` prints one."""
    return secrets.token_urlsafe(48)


def fill(template: str) -> tuple[str, dict[str, str]]:
    """The template's text with its empty secrets filled; also the values it chose."""
    values: dict[str, str] = {}
    for line in template.splitlines():
        match = _LINE.match(line)
        if match:
            values.setdefault(match.group(1), match.group(2))
    chosen = {
        name: maker()
        for name, maker in (
            ("POSTGRES_PASSWORD", _secret),
            ("REDIS_PASSWORD", _secret),
            ("ENCRYPTION_KEYS", generate_key),
            ("MASTER_API_TOKEN", _secret),
            ("METRICS_TOKEN", _secret),
            ("WEB_JWT_KEYS", _jwt_key),
            ("SALES_INTERNAL_TOKEN", _secret),
        )
        if not values.get(name)
    }
    merged = {**values, **chosen}
    user = merged.get("POSTGRES_USER") or "botfleet"
    database = merged.get("POSTGRES_DB") or "botfleet"
    pg_port = merged.get("POSTGRES_PORT") or "5432"
    redis_port = merged.get("REDIS_PORT") or "6379"
    if "POSTGRES_PASSWORD" in chosen:
        password = quote(merged["POSTGRES_PASSWORD"], safe="")
        chosen["DATABASE_URL"] = (
            f"postgresql://{quote(user, safe='')}:{password}@127.0.0.1:{pg_port}/{database}"
        )
    if "REDIS_PASSWORD" in chosen:
        password = quote(merged["REDIS_PASSWORD"], safe="")
        chosen["REDIS_URL"] = f"redis://default:{password}@127.0.0.1:{redis_port}/0"
    out = []
    done: set[str] = set()
    for line in template.splitlines():
        match = _LINE.match(line)
        if match and match.group(1) in chosen and match.group(1) not in done:
            done.add(match.group(1))
            out.append(f"{match.group(1)}={chosen[match.group(1)]}")
        else:
            out.append(line)
    for name in chosen:
        if name not in done:
            out.append(f"{name}={chosen[name]}")
    return "\n".join(out) + "\n", chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.init_env", description=__doc__)
    parser.add_argument("--template", default=str(ROOT / ".env.example"))
    parser.add_argument("--to", default=".env")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    target = Path(args.to)
    if target.exists() and not args.force:
        print(
            f"{target} exists: not replaced (its ENCRYPTION_KEYS decrypt the stored bot tokens). "
            "Edit it, or move it away first.",
            file=sys.stderr,
        )
        return 1
    text, chosen = fill(Path(args.template).read_text())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    target.chmod(0o600)
    print(f"{target} written (0600) with new {', '.join(sorted(chosen))}")
    print("back up ENCRYPTION_KEYS apart from the database backups: without it no bot token opens")
    values = {m.group(1): m.group(2) for m in map(_LINE.match, text.splitlines()) if m}
    missing = [name for name in STILL_TO_FILL if not values.get(name)]
    if missing:
        print(
            f"still to fill for real Telegram/YooKassa: {', '.join(missing)} "
            "(or try it first without them: make up TRIAL=1)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
