"""Payment request ids: minted here, and checked for shape before any lookup.

An id is `pr_` and 24 characters of URL-safe base64 (144 random bits). Every
entry point (the gate's `payment_request_id`, `_meta`, the page's URL, the
ledgers themselves) checks the shape first, so that an id that cannot exist
is answered as unknown without a query, and never reaches a database driver
(PostgreSQL refuses a NUL byte with an error of its own).
"""

from __future__ import annotations

import re
import secrets

__all__ = ["is_request_id", "new_request_id"]

# Wider than what we mint (24 characters), so ids minted by other versions still resolve.
_REQUEST_ID = re.compile(r"pr_[A-Za-z0-9_-]{16,64}")


def new_request_id() -> str:
    return "pr_" + secrets.token_urlsafe(18)


def is_request_id(value: object) -> bool:
    """Whether `value` has the shape of a payment request id (ASCII, bounded)."""
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None
