"""`x402-mcp demo` tells the whole story and exits 0, as a user would run it."""

import subprocess
import sys


def test_demo_runs_end_to_end_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "x402_mcp.cli.main", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_the_story_holds(done.stdout)


def assert_the_story_holds(out: str) -> None:
    """What the demo must print: the challenge, the settlement, the balances, the refused replay."""
    assert "Payment required: $0.05" in out
    assert "settled on chain in transaction 0x" in out
    assert "payer $10.00 -> $9.95" in out
    assert "payee $0.00 -> $0.05" in out
    assert "already paid and used" in out
    assert "The story holds: paid once, ran once, replay refused." in out
    # No link to the page the demo served: it is gone once the demo exits; the text says so.
    assert "http://" not in out and "https://" not in out
    assert "<payment page link> stands for the link to a payment page that this demo serves" in out
    # "The JSON above" is printed above it.
    json_at = out.index('"x402Version": 2')
    assert json_at < out.index("(the requirements are the JSON above)")
    assert '"paymentRequestId": "pr_' in out[json_at:]
