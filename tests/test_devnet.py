"""`Devnet`: anvil started so that it obeys the signals that stop it, whatever its parent blocks."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from x402_mcp.chains.devnet import Devnet

from .chains import anvil_or_skip


def blocked_signals(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [each for each in status.splitlines() if each.startswith("SigBlk:")]
    return int(line.split()[1], 16)


@pytest.mark.anvil
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_anvil_does_not_inherit_the_blocked_stop_signals() -> None:
    anvil_or_skip()
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # What `x402-mcp devnet` does before starting the chain, to wait for Ctrl+C with sigwait.
    before = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with Devnet(port=0, accounts=1, usdc="1") as net:
            mask = blocked_signals(net.pid)
            assert net.describe()["accounts"][0]["usdc"] == "1"
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
    assert mask & (1 << (signal.SIGTERM - 1)) == 0 and mask & (1 << (signal.SIGINT - 1)) == 0
