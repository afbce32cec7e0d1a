"""textkit: text tools. `word_count` is free; `summarize` costs $0.001 per word (at least $0.01)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from decimal import Decimal
from typing import Any

from x402_mcp import Payments, paid
from x402_mcp.frameworks.choice import (
    DEFAULT_FRAMEWORK,
    framework_from_argv,
    paid_server,
    run_stdio,
    tool_annotations,
)

_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP_TEXT = "a an and are as at be but by for from has have in is it its of on or that the to was were with"
_STOP = frozenset(_STOP_TEXT.split())


def summary_price(text: str, sentences: int = 3) -> str:
    """$0.001 per word of input, at least $0.01 (an exact decimal string)."""
    return str(max(Decimal("0.01"), Decimal("0.001") * len(_WORD.findall(text))))


def build(payments: Payments, framework: str = DEFAULT_FRAMEWORK) -> Any:
    """The sample on `framework` (`mcpserver` or `fastmcp`), charging through `payments`."""
    server = paid_server("textkit", payments, framework)

    @server.tool(title="Word count", annotations=_computes_only("Word count"))
    def word_count(text: str) -> dict[str, int]:
        """Count words, sentences and characters of a text (free)."""
        return {
            "words": len(_WORD.findall(text)),
            "sentences": len([s for s in _SENTENCE.split(text.strip()) if s]),
            "characters": len(text),
        }

    @server.tool(title="Summarize text (paid)", annotations=_computes_only("Summarize text (paid)"))
    @paid(price=summary_price, rule="$0.001 per word, at least $0.01", description="an extractive summary")
    def summarize(text: str, sentences: int = 3) -> str:
        """Summarize a text: its most representative sentences, in their original order."""
        parts = [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]
        weights = Counter(w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP)

        def score(sentence: str) -> float:
            words = [w.lower() for w in _WORD.findall(sentence)]
            return sum(weights[w] for w in words) / (len(words) or 1)

        keep = sorted(sorted(range(len(parts)), key=lambda i: -score(parts[i]))[: max(1, sentences)])
        return " ".join(parts[i] for i in keep)

    return server


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
