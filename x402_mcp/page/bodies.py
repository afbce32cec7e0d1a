"""Reading an HTTP request body that an outsider sent, bounded before it is held.

The payment page (on every port it is served from: mounted in the author's
HTTP app, the stdio side port, its own process) and the facilitator server
take JSON bodies from anyone who reaches them. `read_bounded` is the one way
they read a body: it refuses one past its limit by its declared
`Content-Length` (read with the wire grammar, so "²" is no length) before
reading it, and by its streamed size for one that declares none or lies; and
it gives the whole body a deadline, so a client that sends headers and part
of a body and then stalls holds nothing for long (uvicorn itself waits for a
body forever). `parse_json_body` is the one way they read it as JSON (with
`safejson.loads_untrusted`): numbers a person could not mean and nesting deep
enough to exhaust the stack are a `BadJson` (a 400), never a 500 or a crash.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request

from ..core.safejson import MAX_JSON_INTEGER_DIGITS, UntrustedJsonError, loads_untrusted
from ..core.wire import parse_uint
from ..errors import X402MCPError

__all__ = [
    "BODY_DEADLINE_SECONDS",
    "MAX_JSON_INTEGER_DIGITS",
    "BadContentLength",
    "BadJson",
    "BodyTimeout",
    "BodyTooLarge",
    "parse_json_body",
    "read_bounded",
]

BODY_DEADLINE_SECONDS = 10.0
"""How long a whole request body may take to arrive: ample for 16 KiB on any real link."""


class BadContentLength(X402MCPError, ValueError):
    """The `Content-Length` header is not a number of bytes."""


class BodyTooLarge(X402MCPError, ValueError):
    """The body is over the limit; `declared` is its declared length, when it declared one."""

    def __init__(self, declared: int | None) -> None:
        super().__init__(declared)
        self.declared = declared


class BodyTimeout(X402MCPError, TimeoutError):
    """The body did not arrive in full within the deadline (answer 408 and close the connection)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} seconds")
        self.seconds = seconds


class BadJson(X402MCPError, ValueError):
    """The body is not JSON this server reads; the message says what is wrong, quoting nothing."""


async def read_bounded(request: Request, limit: int, *, deadline: float | None = None) -> bytes:
    """The whole body of `request`, at most `limit` bytes, all of it within `deadline` seconds
    (by default `BODY_DEADLINE_SECONDS`, read when called).

    Raises:
        BadContentLength: the declared length is not a canonical decimal number.
        BodyTooLarge: it declares, or streams, more than `limit` bytes.
        BodyTimeout: the body was still arriving after `deadline` seconds.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = parse_uint(declared, "Content-Length")
        except ValueError:
            raise BadContentLength(declared) from None
        if length > limit:
            raise BodyTooLarge(length)
    seconds = BODY_DEADLINE_SECONDS if deadline is None else deadline
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(seconds) as scope:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(None)
            chunks.append(chunk)
    if scope.cancelled_caught:
        raise BodyTimeout(seconds)
    return b"".join(chunks)


def parse_json_body(raw: bytes) -> Any:
    """The JSON value of a request body, read with `loads_untrusted`.

    Raises:
        BadJson: the body is not JSON this server reads; the message says why.
    """
    try:
        return loads_untrusted(raw)
    except UntrustedJsonError as error:
        raise BadJson(f"the request body is not accepted: {error}") from None
