"""Where a server keeps its ledger when its operator names none: one SQLite file per server.

Unrelated servers on one machine (other authors, other payees) must not share a ledger by
accident, so the default file is derived from the server's identity: its name, payee,
network and asset. The name (made safe for a file name) leads, so `x402-mcp ledger
--server NAME` can find it; a digest of the whole identity follows, so two servers whose
names read alike once sanitised, or one server moved to another payee, never meet in one
file. Sharing one ledger stays possible on purpose (`X402_LEDGER_URL` / `ledger=`); the
ledger's ownership checks then keep each server to its own requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "LEGACY_FILE",
    "data_directory",
    "ledger_directory",
    "legacy_ledger",
    "server_ledger_path",
    "server_ledgers",
    "warn_of_legacy_ledger",
]

logger = logging.getLogger("x402_mcp")

#: The one file every server shared before ledgers were per server (kept only to warn about it).
LEGACY_FILE = "ledger.sqlite"

#: The longest name part of a file name; the digest after it keeps the name unique.
_NAME_LENGTH = 48

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def data_directory(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/x402-mcp`, else `~/.local/share/x402-mcp` (absolute)."""
    env = os.environ if environ is None else environ
    base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return (base / "x402-mcp").absolute()


def ledger_directory(environ: Mapping[str, str] | None = None) -> Path:
    """The directory of the per-server default ledgers."""
    return data_directory(environ) / "ledgers"


def safe_name(server: str | None) -> str:
    """`server` as the leading part of a file name: letters, digits, `-` and `_` only
    (no separators, dots or control characters), at most `_NAME_LENGTH` long, never empty."""
    cleaned = _UNSAFE.sub("-", server or "").strip("-_")[:_NAME_LENGTH].strip("-_")
    return cleaned or "server"


def server_ledger_path(
    server: str | None,
    *,
    pay_to: str,
    network: str,
    asset: str,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The default ledger file of the server named `server` (None: not known yet) that is
    paid to `pay_to` on `network` in `asset`."""
    identity = json.dumps([server or "", pay_to, network, asset])
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return ledger_directory(environ) / f"{safe_name(server)}-{digest}.sqlite"


def server_ledgers(environ: Mapping[str, str] | None = None, *, server: str | None = None) -> list[Path]:
    """The per-server default ledger files present, sorted; with `server`, only those of
    servers whose name makes that same file-name part."""
    directory = ledger_directory(environ)
    if not directory.is_dir():
        return []
    found = sorted(path for path in directory.glob("*.sqlite") if path.is_file())
    if server is None:
        return found
    prefix = safe_name(server)
    return [path for path in found if path.name.rsplit("-", 1)[0] == prefix]


def legacy_ledger(environ: Mapping[str, str] | None = None) -> Path | None:
    """The default ledger every server shared before ledgers were per server, if it is there."""
    path = data_directory(environ) / LEGACY_FILE
    return path if path.is_file() else None


_warned: set[Path] = set()


def warn_of_legacy_ledger(ledger: object) -> None:
    """Log once (WARNING) that the old shared default ledger exists while `ledger`, this
    server's own default, is opened: requests paid there before the upgrade are not in it."""
    legacy = legacy_ledger()
    if legacy is None or legacy in _warned:
        return
    _warned.add(legacy)
    logger.warning(
        "%s opens this server's own default ledger, but the ledger that servers shared by default"
        " before ledgers were per server is still at %s: requests paid there are not redeemable"
        " here. To keep serving them, set X402_LEDGER_URL=sqlite:///%s (sharing it is safe: each"
        " server acts only on its own requests); list it with `x402-mcp ledger --url sqlite:///%s`.",
        ledger,
        legacy,
        legacy.as_posix().lstrip("/"),
        legacy.as_posix().lstrip("/"),
    )
