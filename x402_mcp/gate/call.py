"""`ToolCall`: one `tools/call` of a paid tool, as every framework door hands it to the gate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_types import CallToolResult

from ..core.pricing import PaidTool

OfferLink = Callable[[str, str, str], Awaitable[None]]
"""Offer a payment link to the client: `(message, url, elicitation id)`; may raise."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What the gate needs to know about one call, read off the framework by its door.

    Attributes:
        tool: the tool's name.
        spec: its `@paid` marker.
        arguments: the arguments the tool will be run with; the gate removes its own
            `payment_request_id` from this very dict before the tool sees it.
        meta: the request's `_meta` (where `x402/payment` travels).
        caller: the identity payment requests are bound to (see `callers`), or None.
        validate: the arguments as the tool's function receives them, checked by the
            framework's own argument model; raises `pydantic.ValidationError`.
        run: runs the tool (the rest of the framework's chain) and answers its result.
        http_request: the Starlette request of an HTTP call (None over stdio and in memory);
            its socket address is where a link may point when no `public_url` is set.
        offer_link: offers the payment link by URL elicitation, when the door can.
        tool_error: the framework's tool error types, whose words are meant for the caller
            (a tool raising one after its payment settled has them shown with the note).
    """

    tool: str
    spec: PaidTool
    arguments: dict[str, Any]
    meta: Mapping[str, Any]
    caller: str | None
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    run: Callable[[], Awaitable[CallToolResult]]
    http_request: Any = None
    offer_link: OfferLink | None = None
    tool_error: tuple[type[BaseException], ...] = ()
