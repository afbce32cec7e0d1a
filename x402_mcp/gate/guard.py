"""A `@paid` tool runs only inside its gate.

`@paid` hands the framework a guard around the tool's function: called while
no gate has authorised the run, it refuses with a tool error that names the
missing `MCPServer(..., extensions=[payments])` / `payments.install(mcp)`,
instead of running the tool for free. The gate (`x402_mcp.gate`) is the one
place that runs a paid tool's body, and it does so inside `gate_passed()`.

When `@paid` is written above the framework's tool decorator, the framework
has registered the bare function before `@paid` sees it: `guard` then points
every tool registration that holds that function at the guard instead (the
framework details live in the seams of `x402_mcp.frameworks`, which register them here
with `register_rebinder` when that package loads).

This module imports no framework: the refusal is made of the `ToolError` classes of the
frameworks that are loaded, so it reads the same on the MCP SDK 2.x and 1.x and FastMCP.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import logging
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from ..errors import ConfigurationError, X402MCPError

logger = logging.getLogger("x402_mcp")

GATE_MISSING = (
    "{tool} is a paid tool, but this server has no x402 payments gate, so it refuses to run "
    "(for free) and nothing was charged. The server's author must install the payments: "
    "MCPServer(..., extensions=[payments]) on the MCP SDK, or payments.install(mcp) on FastMCP."
)

_authorised: ContextVar[object | None] = ContextVar("x402_mcp_gate_passed", default=None)
"""The `@paid` marker of the run the gate authorised, in the context that run executes in."""


@contextlib.contextmanager
def gate_passed(spec: object) -> Iterator[None]:
    """Mark the code run inside as a paid run the gate authorised (its payment is settled,
    or it redeems a paid request). Only the gate calls this."""
    token = _authorised.set(spec)
    try:
        yield
    finally:
        _authorised.reset(token)


def inside_gate() -> bool:
    """Whether the current code runs inside a run the gate authorised."""
    return _authorised.get() is not None


class GateMissing(X402MCPError):
    """A paid tool was called while no payments gate authorised the run. Raised as a subclass
    that is also the `ToolError` of every loaded framework, so each answers its words as an
    error result."""


FRAMEWORK_MODULES = ("mcp.server.mcpserver", "mcp.server.fastmcp", "fastmcp")
"""The frameworks whose tool decorators `@paid` may stand above (2.x, 1.x, FastMCP)."""

TOOL_ERROR_MODULES = (
    "mcp.server.mcpserver.exceptions",  # MCP SDK 2.x MCPServer
    "mcp.server.fastmcp.exceptions",  # MCP SDK 1.x FastMCP
    "fastmcp.exceptions",  # standalone FastMCP (3 and 4): passes its words on even when it masks errors
)


def guard(fn: Callable[..., Any], marker: str, spec: object) -> Callable[..., Any]:
    """`fn` behind the gate check, looking to a framework exactly as `fn` does (name,
    docstring, signature, annotations, sync or async), with `spec` set as `marker`.

    Every tool registration that already holds `fn` (`@paid` above the tool decorator)
    is pointed at the guard.
    """
    held = sys.getrefcount(fn)
    reported = threading.Lock()
    said: list[bool] = []

    def check() -> None:
        if inside_gate():
            return
        name = getattr(fn, "__name__", repr(fn))
        with reported:
            first = not said
            if first:
                said.append(True)
        if first:
            logger.error(
                "paid tool %r was called without the x402 payments gate and refused to run; install "
                "it: MCPServer(..., extensions=[payments]) or payments.install(mcp) on FastMCP",
                name,
            )
        raise _refusal(GATE_MISSING.format(tool=name))

    guarded: Callable[..., Any]
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def guarded_stream(*args: Any, **kwargs: Any) -> Any:
            check()
            async for item in fn(*args, **kwargs):
                yield item

        guarded = guarded_stream
    elif _is_async(fn):

        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            check()
            return await fn(*args, **kwargs)

        guarded = guarded_async
    else:

        @functools.wraps(fn)
        def guarded_sync(*args: Any, **kwargs: Any) -> Any:
            check()
            return fn(*args, **kwargs)

        guarded = guarded_sync
    setattr(guarded, marker, spec)
    if _probe is not None:
        _probe.append(held)
    elif _unheld is None or held > _unheld:
        # Something besides our caller holds `fn`: perhaps a framework's tool registration.
        _rebind_registrations(fn, guarded)
    return guarded


_unheld: int | None = None
"""The references `guard` sees to a function that nothing but its caller holds (a function
`@paid` is written right above). More means something else holds it, perhaps a tool
registration, and only then are the holders looked for (a walk of the whole heap).
None (not measured, or a build whose reference counts are not exact): always look."""
_probe: list[int] | None = None


def calibrate(decorate: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Measure `_unheld` through `decorate` (a `@paid(...)`) itself, as decorator and as a call,
    so that the count is taken on the very path a tool's function takes on this interpreter."""
    global _probe, _unheld
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return  # free-threaded CPython defers reference counts: always look
    _probe = []
    try:

        @decorate
        def probe() -> None: ...

        decorate(lambda: None)
    finally:
        seen, _probe = _probe, None
    _unheld = min(seen) if len(seen) == 2 else None


def _is_async(fn: Callable[..., Any]) -> bool:
    # As both frameworks decide it: a coroutine function, or an object with an async __call__.
    call = type(fn).__call__ if not inspect.isroutine(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


Rebinder = Callable[[list[object], Callable[..., Any], Callable[..., Any]], object]
"""Points each tool registration of one framework among `holders` that runs `old` at `new`."""

_rebinders: dict[str, Rebinder] = {}
"""The rebinder of each framework, keyed by the module whose presence in `sys.modules` says
that framework is loaded. The doors (`x402_mcp.frameworks`) register here: the gate sits
below them and names no framework."""


def register_rebinder(framework_module: str, rebind: Rebinder) -> None:
    """Let `@paid` written above `framework_module`'s tool decorator reach its registrations."""
    _rebinders[framework_module] = rebind


def _rebind_registrations(fn: Callable[..., Any], guarded: Callable[..., Any]) -> None:
    """Point every framework tool that holds `fn` at `guarded` (`@paid` above `@mcp.tool()`).

    The frameworks' decorators register the function and return it, with no way back
    to the server; the registrations are found as the objects that refer to `fn`.
    """
    # Only the frameworks already loaded can hold a registration of `fn`.
    loaded = [rebind for module, rebind in _rebinders.items() if module in sys.modules]
    if not _rebinders and any(module in sys.modules for module in FRAMEWORK_MODULES):
        # Fail closed: a registration of the bare `fn` would run the tool for free.
        raise ConfigurationError(
            "@paid was imported without x402_mcp.frameworks, so it cannot reach a tool the "
            "framework registered before it: import it as `from x402_mcp import paid`"
        )
    if not loaded:
        return
    holders = _holders(fn)
    for rebind in loaded:
        rebind(holders, fn, guarded)


def _holders(fn: Callable[..., Any]) -> list[object]:
    """The objects that hold `fn`: directly, or in their instance `__dict__` (pydantic models)."""
    direct = gc.get_referrers(fn)
    dicts = [holder for holder in direct if type(holder) is dict and any(v is fn for v in holder.values())]
    owners = gc.get_referrers(*dicts) if dicts else []
    return [holder for holder in direct if type(holder) is not dict] + [
        owner for owner in owners if any(getattr(owner, "__dict__", None) is d for d in dicts)
    ]


@functools.cache
def _refusal_type(tool_errors: tuple[type[Exception], ...]) -> type[Exception]:
    if not tool_errors:
        return GateMissing
    return type("GateMissing", (GateMissing, *tool_errors), {"__module__": __name__})


def _refusal(message: str) -> Exception:
    loaded = (getattr(sys.modules.get(module), "ToolError", None) for module in TOOL_ERROR_MODULES)
    refusal = _refusal_type(tuple(error for error in loaded if isinstance(error, type)))(message)
    # FastMCP logs a tool error at its level each time; ours is logged once, above.
    refusal.log_level = logging.DEBUG  # type: ignore[attr-defined]
    return refusal
