"""Reading JSON that an outsider wrote, without letting it crash or stall the process (pure code).

`json.loads` alone is not safe on such text here:
- nesting: the C decoder recurses once per `[` or `{`, bounded only by the
  recursion limit, which py-evm and py_ecc (imported with the dev chain) raise
  to 100,000, so 16 KiB of `[` overflows the C stack and kills the process
  (a segmentation fault, not an exception). Nesting is counted before decoding.
- integers: Python refuses more than 4300 digits with a bare `ValueError`
  (a 500 where it escapes); they are refused here by name, whatever the
  process's own limit is. Shorter ones are read, for the field that holds
  one to refuse it with its own name (nothing on the wire exceeds 78 digits).
- `NaN`, `Infinity` and numbers past the float range are not JSON numbers a
  payer can mean; they are refused instead of becoming `nan`/`inf`.

Every message says what is wrong and quotes nothing of the text.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import X402MCPError

__all__ = ["MAX_JSON_DEPTH", "MAX_JSON_INTEGER_DIGITS", "UntrustedJsonError", "loads_untrusted"]

MAX_JSON_DEPTH = 64
"""The deepest nesting read; x402 payloads and the page's bodies are at most 5 deep."""

MAX_JSON_INTEGER_DIGITS = 4300
"""The longest integer read: Python's default `int` string limit, cheap to convert."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class UntrustedJsonError(X402MCPError, ValueError):
    """The text is not JSON this package reads; the message says why, quoting nothing."""


def _too_deep(text: str) -> bool:
    depth = 0
    # Brackets inside strings do not nest: strings are removed before counting.
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _integer(text: str) -> int:
    digits = len(text.removeprefix("-"))
    if digits > MAX_JSON_INTEGER_DIGITS:
        raise UntrustedJsonError(
            f"it holds an integer of {digits} digits; at most {MAX_JSON_INTEGER_DIGITS} are accepted"
        )
    return int(text)


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedJsonError("it holds a number too large to represent")
    return value


def _constant(name: str) -> Any:
    raise UntrustedJsonError(f"it holds {name}, which is not a JSON number")


def loads_untrusted(data: str | bytes) -> Any:
    """The JSON value of `data` (UTF-8 when bytes), read defensively.

    Raises:
        UntrustedJsonError: not UTF-8, not JSON, nested more than `MAX_JSON_DEPTH` deep, or
            holding an integer longer than `MAX_JSON_INTEGER_DIGITS` digits, NaN, Infinity or
            a number past the float range.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UntrustedJsonError("it is not UTF-8 text") from None
    if _too_deep(data):
        raise UntrustedJsonError(f"it nests more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(data, parse_int=_integer, parse_float=_real, parse_constant=_constant)
    except UntrustedJsonError:
        raise
    except json.JSONDecodeError as exc:
        raise UntrustedJsonError(f"it is not valid JSON ({exc.msg} at position {exc.pos})") from None
    except (RecursionError, ValueError):  # what int() or float() refuse, in any other way
        raise UntrustedJsonError("it holds a value that cannot be read") from None
