"""Showing text that came from outside (ids, addresses, error details) safely.

Anything a caller sends may be echoed back in an error or kept in the audit
trail. `shown()` makes such a value safe to put in front of a person or a
model: bounded in length, with control characters and bidirectional overrides
(U+202E and friends, which can make `0xdead…` read as something else) replaced
by visible escapes.
"""

from __future__ import annotations

import unicodedata

__all__ = ["DEFAULT_LIMIT", "shown"]

DEFAULT_LIMIT = 80
"""Longer than any id, address or signature fragment a person needs to recognise."""

# Cc: control characters; Cf: format characters (bidi overrides, zero-width joiners);
# Zl/Zp: line and paragraph separators; Co/Cn: private use and unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})


def shown(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """`value` as text that is safe to echo: at most `limit` characters of it, then a note
    of how many more there were; invisible and direction-changing characters escaped."""
    text = value if isinstance(value, str) else repr(value)
    cut = text[:limit]
    visible = "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in cut
    )
    if len(text) > limit:
        visible += f"… ({len(text) - limit} more characters)"
    return visible
