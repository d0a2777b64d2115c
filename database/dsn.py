"""PostgreSQL DSNs: validation, a password-free description for messages, tenant DSNs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit


class InvalidDsnError(ValueError):
    """A DATABASE_URL that is not a usable postgresql:// URL."""


@dataclass(frozen=True, slots=True)
class Dsn:
    url: str
    host: str
    port: int
    database: str
    user: str

    def describe(self) -> str:
        """`user@host:port/db` — never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def with_credentials(self, user: str, password: str) -> str:
        """The same server and database, logging in as `user`."""
        parts = urlsplit(self.url)
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def with_database(self, database: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, ""))


def split_password(url: str) -> tuple[str, str | None]:
    """(`url` without its password, the password or None): the URL can go on a command line or
    into a message, the password only into PGPASSWORD (the one DSN password stripper)."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else None
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    netloc = f"{user}@{host}" if user else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), password


def parse_dsn(url: str) -> Dsn:
    """Validate a postgresql:// URL; InvalidDsnError says what is wrong (without the password)."""
    if not isinstance(url, str) or not url:
        raise InvalidDsnError(
            "DATABASE_URL is empty: expected postgresql://user:password@host:5432/db"
        )
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise InvalidDsnError(
            f"DATABASE_URL must start with postgresql:// (got scheme {parts.scheme or 'none'!r})"
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise InvalidDsnError("DATABASE_URL has a port that is not a number") from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database:
        raise InvalidDsnError(
            "DATABASE_URL needs a host and a database name: postgresql://user:password@host:5432/db"
        )
    return Dsn(
        url=url,
        host=parts.hostname,
        port=port,
        database=database,
        user=unquote(parts.username or "postgres"),
    )
