"""How LocalSettlement waits for a settlement's receipt: the poll schedule, and a receipt found by polling."""

from __future__ import annotations

import math
from itertools import islice

import anyio
import anyio.from_thread
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.types import TxReceipt

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.wire import PaymentRequirements, SettleResponse
from x402_mcp.errors import ConfigurationError
from x402_mcp.settlement.local import RECEIPT_POLL_SECONDS, LocalSettlement, receipt_poll_delays

from ..chains import pay, set_automine
from .conftest import PRICE


def test_polls_start_short_and_double_up_to_a_second() -> None:
    assert RECEIPT_POLL_SECONDS == 0.02
    delays = list(islice(receipt_poll_delays(RECEIPT_POLL_SECONDS), 9))
    assert delays == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0, 1.0, 1.0])


def test_a_two_second_block_costs_seven_polls() -> None:
    # Base mines every 2 s: the last poll before 2 s is the seventh at the latest.
    elapsed = 0.0
    polls = 0
    for delay in receipt_poll_delays(RECEIPT_POLL_SECONDS):
        elapsed += delay
        polls += 1
        if elapsed >= 2.0:
            break
    assert polls == 7


def test_a_first_wait_longer_than_the_cap_stays_constant() -> None:
    assert list(islice(receipt_poll_delays(2.5), 3)) == [2.5, 2.5, 2.5]
    assert list(islice(receipt_poll_delays(0.5, longest=0.75), 3)) == [0.5, 0.75, 0.75]


@pytest.mark.parametrize("bad", [0.0, -0.1, math.nan, math.inf])
def test_a_poll_latency_that_is_not_a_positive_number_is_refused(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="poll_latency must be a positive number of seconds"):
        LocalSettlement.from_rpc(
            "http://127.0.0.1:1", Account.create().key.to_0x_hex(), network="base", poll_latency=bad
        )


@pytest.mark.anyio
async def test_a_receipt_that_is_not_there_at_send_is_found_by_polling(
    chain: TokenChain,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gas = Account.create()
    chain.fund_eth(gas.address, 10**18)
    backend = LocalSettlement(chain.w3, gas, chain.network_info, lock=chain.lock)
    relayer = backend._relayer
    answers: list[bool] = []  # whether each receipt read found one (appended in the worker thread)
    polling = anyio.Event()
    read_receipt = relayer.receipt

    def counted(tx_hash: HexBytes) -> TxReceipt | None:
        receipt = read_receipt(tx_hash)
        answers.append(receipt is not None)
        if len(answers) == 2:
            anyio.from_thread.run_sync(polling.set)
        return receipt

    monkeypatch.setattr(relayer, "receipt", counted)
    results: list[SettleResponse] = []

    async def settle() -> None:
        results.append(await backend.settle(pay(payer, requirements), requirements))

    set_automine(chain, False)
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(settle)
                # Unmined at send and at the first poll: the backend keeps polling.
                await polling.wait()
                assert not results
                set_automine(chain, True)
    finally:
        set_automine(chain, True)

    [result] = results
    assert result.success, result.error_message
    assert chain.balance_of(payee) == PRICE
    assert answers[:2] == [False, False]
    assert answers[-1] is True
