"""passphrase: password tools. `password_strength` is free; `passphrase` costs $0.01."""

from __future__ import annotations

import math
import secrets
import string
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

# A short built-in list keeps the sample offline; its 263 words give about 8 bits each.
_WORD_TEXT = """
acid acorn actor adapt agent alarm album alert alley alpha amber anchor angle ankle apple april
apron arena argue armor arrow atlas attic audio award bacon badge baker bamboo banjo barn basil
basin batch beach beard bench berry bison blade blank blaze bloom board boat bonus boost boxer brain
brass bread brick brush bucket buddy bugle cabin cable cacao camel candy canoe canvas cargo carpet
cedar chalk charm chess chief chili cider cinema civic claim clamp cliff clock cloud clove coach
cobra cocoa comet coral couch crane crater crown cubic curry daisy dance delta denim depot diary
dingo disco dodge dolphin donut dove dragon drama dune eagle easel echo elbow elder ember emerald
empire engine envoy epoch equal fable falcon fancy fern ferry fiber field fig flame flint flute
focus forest fossil fox frost fudge galaxy garlic gecko ghost giant ginger glade glider globe gnome
grape gravel guitar gully habit hammer harbor hazel helmet heron honey horizon hotel humor igloo
index iris island ivory jacket jade jazz jelly jewel jockey jungle kayak kettle kiwi koala ladder
lagoon lantern laser lemon lilac linen lizard llama lobster locket lotus lunar lyric magnet mango
maple marble meadow melon mentor meteor mint mirror mocha monkey mosaic motor muffin nectar needle
noble nugget oasis ocean olive onion opera orbit orchid otter oxygen paddle palace panda paprika
parrot pastel peach pebble pepper piano pilot pixel planet plaza plume polar poppy prism pumpkin
puzzle quartz quill rabbit radar raven record ribbon river robin rocket rumba saddle salmon sapphire
satin scarf scout sierra silver sketch sonar spark sphinx spice spiral sprout
"""
WORDS = tuple(_WORD_TEXT.split())


def build(payments: Payments, framework: str = DEFAULT_FRAMEWORK) -> Any:
    """The sample on `framework` (`mcpserver` or `fastmcp`), charging through `payments`."""
    server = paid_server("passphrase", payments, framework)

    @server.tool(title="Password strength", annotations=_computes_only("Password strength"))
    def password_strength(password: str) -> dict[str, Any]:
        """Estimate a password's strength in bits from its length and character classes (free)."""
        pool = sum(
            size
            for chars, size in (
                (string.ascii_lowercase, 26),
                (string.ascii_uppercase, 26),
                (string.digits, 10),
                (string.punctuation, 32),
            )
            if any(c in chars for c in password)
        )
        bits = round(len(password) * math.log2(pool), 1) if pool else 0.0
        verdict = "weak" if bits < 50 else "fair" if bits < 80 else "strong"
        return {"bits": bits, "verdict": verdict}

    @server.tool(title="Random passphrase (paid)", annotations=_computes_only("Random passphrase (paid)"))
    @paid(price="0.01", description="a fresh random passphrase")
    def passphrase(words: int = 6, separator: str = "-") -> str:
        """A random passphrase of `words` words from a 263-word list (about 8 bits per word)."""
        if not 3 <= words <= 24:
            raise ToolError("words must be between 3 and 24")
        return separator.join(secrets.choice(WORDS) for _ in range(words))

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
