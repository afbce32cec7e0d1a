"""Writing a bundle's zip: entry names every extractor keeps inside it, and a file written
whole or not at all, never through a link planted where it goes."""

from __future__ import annotations

import os
import re
import secrets
import zipfile
from pathlib import Path

_DRIVE = re.compile(r"[A-Za-z]:")


def safe_entry_name(name: str) -> str:
    """`name` when it is a relative archive path that every extractor keeps inside the bundle.

    Checked as Windows and POSIX both read it, whatever this OS is: no backslash (a folder
    separator on Windows), no absolute path, no drive ("C:"), no ':' at all, no empty, `.` or
    `..` part, no control character.

    Raises:
        ConfigurationError: naming the entry and what is wrong with it.
    """
    from ..errors import ConfigurationError

    parts = name.split("/")
    problem = (
        "contains a backslash"
        if "\\" in name
        else "is absolute"
        if name.startswith("/")
        else "names a drive"
        if _DRIVE.match(name) or ":" in name
        else "has an empty, '.' or '..' part"
        if any(part in ("", ".", "..") for part in parts)
        else "contains a control character"
        if any(ord(char) < 32 or ord(char) == 127 for char in name)
        else None
    )
    if problem is not None:
        raise ConfigurationError(
            f"the bundle entry {name!r} {problem}; it would be written outside the bundle"
        )
    return name


def write_zip(target: Path, files: dict[str, bytes]) -> None:
    """Write the archive beside `target` and move it into place: never a half-written bundle.

    The partial file has a fresh random name in the target's folder and is created
    exclusively without following a symlink (O_EXCL | O_NOFOLLOW): nothing planted there
    beforehand is written through. The rename replaces `target` itself, never a file it
    links to, and a `target` that is a symlink is refused.
    """
    from ..errors import ConfigurationError

    entries = {safe_entry_name(name): data for name, data in files.items()}
    if target.is_symlink():
        raise ConfigurationError(
            f"--output {str(target)!r} is a symbolic link; remove it or choose another file"
        )
    partial = target.with_name(f".{target.name}.{secrets.token_hex(8)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    created = False
    try:
        descriptor = os.open(partial, flags, 0o644)
        created = True
        with (
            os.fdopen(descriptor, "wb") as file,
            zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            for name, data in entries.items():
                archive.writestr(name, data)
        os.replace(partial, target)
        created = False
    except OSError as exc:
        raise ConfigurationError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if created:
            partial.unlink(missing_ok=True)
