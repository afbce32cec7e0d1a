"""mathlab: number tools. `is_prime` is free; `factorize` costs $0.02."""

from __future__ import annotations

import sys
from typing import Any

from x402_mcp import Payments, paid
from x402_mcp.frameworks.choice import (
    DEFAULT_FRAMEWORK,
    ToolError,
    framework_from_argv,
    paid_server,
    run_stdio,
    tool_annotations,
)

MAX_DIGITS = 30


def build(payments: Payments, framework: str = DEFAULT_FRAMEWORK) -> Any:
    """The sample on `framework` (`mcpserver` or `fastmcp`), charging through `payments`."""
    server = paid_server("mathlab", payments, framework)

    @server.tool(title="Primality test", annotations=_computes_only("Primality test"))
    def is_prime(n: int) -> bool:
        """Whether n is prime (free; deterministic Miller-Rabin for 64-bit numbers and beyond)."""
        return _is_prime(n)

    @server.tool(title="Prime factorization (paid)", annotations=_computes_only("Prime factorization (paid)"))
    @paid(price="0.02", description="a prime factorization")
    def factorize(n: int) -> list[int]:
        """The prime factors of n (2 <= n < 10**30), smallest first, with multiplicity."""
        if n < 2 or len(str(n)) > MAX_DIGITS:
            raise ToolError(f"n must be between 2 and 10**{MAX_DIGITS}")
        return _factorize(n)

    return server


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in small:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho(n: int) -> int:
    """A non-trivial factor of composite n (Pollard's rho, Brent's cycle detection)."""
    if n % 2 == 0:
        return 2
    for c in range(1, 100):
        x = y = 2
        d = 1
        while d == 1:
            x = (x * x + c) % n
            y = (y * y + c) % n
            y = (y * y + c) % n
            d = _gcd(abs(x - y), n)
        if d != n:
            return d
    raise ToolError("could not factor this number")


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _factorize(n: int) -> list[int]:
    if n == 1:
        return []
    if _is_prime(n):
        return [n]
    d = _rho(n)
    return sorted(_factorize(d) + _factorize(n // d))


def _computes_only(title: str) -> Any:
    """Hints for hosts: the tool computes an answer and touches nothing (the payment, if any,
    is the gate's, never the tool's), so calling it again changes nothing either."""
    return tool_annotations(
        title, readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False
    )


def main() -> None:
    # `--framework fastmcp` runs the same tools on FastMCP (4, or 3 next to MCP SDK 1.x).
    run_stdio(build(Payments.from_env(), framework_from_argv(sys.argv[1:])))


if __name__ == "__main__":
    main()
