"""Pick a ledger backend from a URL or a path."""

from __future__ import annotations

import os
from urllib.parse import unquote

from ..errors import ConfigurationError
from .base import Ledger
from .postgres import PostgresLedger
from .sqlite import SQLiteLedger

_FORMS = "sqlite:///<absolute path>, sqlite:///:memory:, a file path, or postgresql://…"


def open_ledger(url_or_path: str | os.PathLike[str]) -> Ledger:
    """The ledger at `url_or_path`, made but not yet opened: `await ledger.open()` before use.

    Accepted forms:

    - `postgresql://user@host:5432/db` or `postgres://…`: a `PostgresLedger`
      (needs `pip install 'mcp-x402[postgres]'`);
    - `sqlite:///abs/path/ledger.sqlite` (three slashes, then the absolute path;
      percent-escapes are decoded) or `sqlite:///:memory:`: a `SQLiteLedger`;
    - a plain file path (`ledger.sqlite`, `/var/lib/x402/ledger.sqlite`, a
      `pathlib.Path`) or `:memory:`: a `SQLiteLedger`.

    Raises:
        ConfigurationError: another scheme, a relative or host-qualified
            `sqlite:` URL, URL options, or psycopg missing for a PostgreSQL URL.
    """
    if isinstance(url_or_path, os.PathLike):
        return SQLiteLedger(url_or_path)
    if not url_or_path:
        raise ConfigurationError(f"the ledger location is empty; give {_FORMS}")
    scheme, separator, rest = url_or_path.partition("://")
    if not separator:
        return SQLiteLedger(url_or_path)
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return PostgresLedger(url_or_path)
    if scheme == "sqlite":
        return SQLiteLedger(_sqlite_path(rest))
    # Only the scheme goes into the message: the rest may hold a password.
    raise ConfigurationError(f"unsupported ledger URL scheme {scheme!r}; give {_FORMS}")


def _sqlite_path(rest: str) -> str:
    """The file path of a `sqlite://` URL, from what follows the `//`."""
    if "?" in rest or "#" in rest:
        raise ConfigurationError("sqlite ledger URLs take no options (nothing after ? or #)")
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/") or rest == "/":
        raise ConfigurationError(
            f"sqlite ledger URL sqlite://{rest} has no absolute path;"
            " write sqlite:///abs/path (three slashes)"
        )
    return unquote(rest)
