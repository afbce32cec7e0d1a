"""Pick a ledger backend from a URL or a path."""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import unquote

import anyio.to_thread

from ..errors import ConfigurationError, LedgerError
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
            # Not quoted: a URL written like a server's (sqlite://user:password@host/...) may hold a secret.
            "the sqlite ledger URL has no absolute path; write sqlite:///abs/path (three slashes)"
        )
    return unquote(rest)


# SQLite's primary result codes that mean this process cannot use the file as a ledger
# (as opposed to BUSY/LOCKED: another process is writing, which proves nothing about us).
_UNUSABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_NOTADB,
    }
)
_PROBE_TIMEOUT_SECONDS = 5.0


async def open_checked(ledger: Ledger) -> None:
    """Open `ledger` and make sure this process can write it, so a broken ledger stops the
    server at start rather than failing its first paid call (after the buyer has paid).

    SQLite opens a file it may not write (read-only file, directory or mount) in
    read-only mode without a word; the probe takes the write lock and creates a table
    in a transaction it rolls back, which touches nothing.

    Raises:
        LedgerError: naming the file and what to do (a PostgreSQL error is left as it
            is: its connection string may hold a password).
    """
    sqlite_path = ledger.path if isinstance(ledger, SQLiteLedger) and ledger.path != ":memory:" else None
    try:
        await ledger.open()
    except LedgerError as exc:
        if sqlite_path is None:
            raise
        raise LedgerError(f"{exc}. {_what_to_do(sqlite_path)}") from exc
    if sqlite_path is not None:
        problem = await anyio.to_thread.run_sync(_write_problem, sqlite_path)
        if problem is not None:
            raise LedgerError(
                f"the SQLite ledger {sqlite_path} cannot be written ({problem}). {_what_to_do(sqlite_path)}"
            )


def _what_to_do(path: str) -> str:
    return (
        f"Check that {path} is an x402-mcp ledger and that this process may write it and its "
        "directory (SQLite adds -wal and -shm files beside it), or point X402_LEDGER_URL "
        "(Payments(ledger=...)) at another file"
    )


def _write_problem(path: str) -> str | None:
    """Why this process cannot write the SQLite file at `path`, or None when it can."""
    try:
        conn = sqlite3.connect(path, timeout=_PROBE_TIMEOUT_SECONDS, isolation_level=None)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE x402_write_probe (unused INTEGER)")
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _UNUSABLE_CODES:
            return str(exc)
        return None  # busy or locked by another writer: the ledger handles waiting itself
    finally:
        conn.close()
    return None
