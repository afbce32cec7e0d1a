"""Reading an HTTP request body that an outsider sent, bounded before it is held.

The payment page and the facilitator server both take JSON bodies from anyone
who reaches them; `read_bounded` refuses a body past its limit by its declared
`Content-Length` (read with the wire grammar, so "²" is no length) before
reading it, and by its streamed size for one that declares none or lies.
"""

from __future__ import annotations

from starlette.requests import Request

from .wire import parse_uint

__all__ = ["BadContentLength", "BodyTooLarge", "read_bounded"]


class BadContentLength(ValueError):
    """The `Content-Length` header is not a number of bytes."""


class BodyTooLarge(ValueError):
    """The body is over the limit; `declared` is its declared length, when it declared one."""

    def __init__(self, declared: int | None) -> None:
        super().__init__(declared)
        self.declared = declared


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body of `request`, at most `limit` bytes.

    Raises:
        BadContentLength: the declared length is not a canonical decimal number.
        BodyTooLarge: it declares, or streams, more than `limit` bytes.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = parse_uint(declared, "Content-Length")
        except ValueError:
            raise BadContentLength(declared) from None
        if length > limit:
            raise BodyTooLarge(length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(None)
        chunks.append(chunk)
    return b"".join(chunks)
