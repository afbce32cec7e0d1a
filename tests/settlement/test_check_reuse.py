"""settle right after verify reuses verify's checks of the same payment, and only then."""

from __future__ import annotations

import pytest
from eth_account import Account

from x402_mcp.devchain import DevChain
from x402_mcp.settlement import local
from x402_mcp.settlement.checks import VALID_BEFORE, check_exact_payment

from ..chains import pay, requirements_for
from .conftest import PRICE

pytestmark = pytest.mark.anyio


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _backend(chain: DevChain, clock: _Clock) -> local.LocalSettlement:
    gas = Account.create()
    chain.fund_eth(gas.address, 10**18)
    return local.LocalSettlement(chain.w3, gas, chain.network_info, clock, lock=chain.lock)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The `now` of every full check the backend runs."""
    seen: list[int] = []

    def counted(*args: object, now: int) -> object:
        seen.append(now)
        return check_exact_payment(*args, now=now)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "check_exact_payment", counted)
    return seen


async def test_settle_in_the_same_second_as_verify_reuses_its_checks(
    devchain: DevChain, checks: list[int]
) -> None:
    clock = _Clock(devchain.w3.eth.get_block("latest")["timestamp"] + 0.1)
    requirements = requirements_for(devchain, Account.create().address, amount=str(PRICE))
    backend = _backend(devchain, clock)
    payment = pay(devchain.new_account("1"), requirements)

    assert (await backend.verify(payment, requirements)).is_valid
    clock.now += 0.5
    settled = await backend.settle(payment, requirements)

    assert settled.success, settled.error_message
    assert len(checks) == 1


async def test_settle_in_a_later_second_checks_again_and_sees_the_expiry(
    devchain: DevChain, checks: list[int]
) -> None:
    start = devchain.w3.eth.get_block("latest")["timestamp"]
    clock = _Clock(start)
    requirements = requirements_for(devchain, Account.create().address, amount=str(PRICE))
    backend = _backend(devchain, clock)
    # Valid for 7 more seconds by the clock (validBefore has a 6-second grace).
    payment = pay(devchain.new_account("1"), requirements, valid_before=int(start) + 13)

    assert (await backend.verify(payment, requirements)).is_valid
    clock.now += 60
    settled = await backend.settle(payment, requirements)

    assert not settled.success
    assert settled.error_reason == VALID_BEFORE
    assert checks == [int(start), int(start) + 60]


async def test_a_payment_changed_after_verify_is_checked_again(devchain: DevChain, checks: list[int]) -> None:
    clock = _Clock(devchain.w3.eth.get_block("latest")["timestamp"])
    requirements = requirements_for(devchain, Account.create().address, amount=str(PRICE))
    backend = _backend(devchain, clock)
    payment = pay(devchain.new_account("1"), requirements)
    assert (await backend.verify(payment, requirements)).is_valid

    payment.payload.authorization.value = str(PRICE + 1)  # in place: the same object, changed
    settled = await backend.settle(payment, requirements)

    assert not settled.success
    assert len(checks) == 2
