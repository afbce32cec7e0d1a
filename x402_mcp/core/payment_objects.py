"""Reading a payment as it arrives, before any model sees it: an object, JSON, or base64 of
JSON (as Cloudflare's agents send), bounded in size and plain JSON data throughout."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..errors import MalformedPayment
from .safejson import UntrustedJsonError, loads_untrusted

MAX_PAYLOAD_BYTES = 16 * 1024
"""A real exact-EVM payload is under 2 KiB; anything far larger is refused unread."""


def read_payment_object(raw: Any) -> dict[str, Any]:
    """A payment (an object, JSON, or base64 of JSON as Cloudflare's agents send) as a bounded object."""
    if isinstance(raw, dict):
        return _bounded(raw)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        raise MalformedPayment(f"the payment must be a JSON object, not {type(raw).__name__}")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise MalformedPayment(f"the payment is {len(raw)} bytes; at most {MAX_PAYLOAD_BYTES} are accepted")
    text = raw.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedPayment("the payment is neither a JSON object nor base64 of one") from None
    try:
        value = loads_untrusted(text)
    except UntrustedJsonError as exc:  # not JSON, too deep for the C decoder, an unreadable number
        raise MalformedPayment(f"the payment is not accepted: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedPayment("the payment must be a JSON object")
    return _bounded(value)


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    try:
        # Measured as UTF-8 bytes, which also refuses lone surrogates ("\ud800" is valid
        # JSON but no text), so nothing downstream meets a string it cannot store or send.
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise MalformedPayment(
            "the payment holds text that is not valid Unicode (a lone surrogate)"
        ) from None
    except (TypeError, ValueError):  # not JSON data, or an integer too long to write out
        raise MalformedPayment("the payment is not plain JSON data") from None
    if size > MAX_PAYLOAD_BYTES:
        raise MalformedPayment(f"the payment is larger than {MAX_PAYLOAD_BYTES} bytes")
    return value
