"""Routing a call and judging its stored request: every route × every state, without I/O."""

from __future__ import annotations

import pytest

from x402_mcp.core.flow import Judgement, Route, judge_payment, judge_redemption, route
from x402_mcp.core.states import (
    TRANSITIONS,
    Event,
    PaymentRequest,
    State,
    StateConflict,
    claimable,
    lease_lapsed,
    refusal_after_conflict,
    refusal_to_pay,
    settler_presumed_gone,
)
from x402_mcp.errors import (
    LedgerError,
    PaymentExpired,
    PaymentInProgress,
    PaymentMismatch,
    PaymentReplayed,
    UnknownPaymentRequest,
)

NOW = 1_000.0


def request(state: State = State.ISSUED, **changes: object) -> PaymentRequest:
    values: dict[str, object] = {
        "id": "pr_x",
        "tool": "search",
        "price": 50_000,
        "asset": "0xA",
        "network": "eip155:84532",
        "pay_to": "0xB",
        "caller": "stdio:1",
        "created_at": NOW - 10,
        "expires_at": NOW + 600,
        "max_timeout_seconds": 600,
        "state": state,
    }
    values.update(changes)
    return PaymentRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("paying", "named", "explicit", "caller", "expected"),
    [
        (True, None, None, "stdio:1", Route.PAY_FRESH_QUOTE),
        (True, None, None, None, Route.PAY_FRESH_QUOTE),
        (True, None, "pr_a", None, PaymentMismatch),
        (True, "pr_a", None, None, Route.PAY_NAMED),
        (True, "pr_a", "pr_a", "stdio:1", Route.PAY_NAMED),
        (True, "pr_a", "pr_b", None, PaymentMismatch),
        (False, None, "pr_a", "stdio:1", Route.REDEEM_BY_ID),
        (False, None, "pr_a", None, Route.REDEEM_BY_ID),
        (False, None, None, "stdio:1", Route.REDEEM_OWN),
        (False, None, None, None, Route.QUOTE),
    ],
)
def test_route(
    paying: bool, named: str | None, explicit: str | None, caller: str | None, expected: object
) -> None:
    routed = route(paying=paying, names_request=named, explicit_id=explicit, caller=caller)
    if isinstance(expected, Route):
        assert routed is expected
    else:
        assert isinstance(routed, expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("same_payment", [False, True])
def test_a_payment_for_every_state(state: State, same_payment: bool) -> None:
    judged = judge_payment(
        request(state), "pr_x", tool="search", price=50_000, decimals=6, same_payment=same_payment
    )
    if same_payment and state in (State.PAID, State.REDEEMING):
        assert judged is Judgement.RUN_PAID
    else:
        # Whether it still takes a payment is checked under the payment's claim (`begin`).
        assert judged is Judgement.SETTLE_AND_RUN


@pytest.mark.parametrize("state", list(State))
def test_a_request_never_pays_another_tool_or_a_dearer_call(state: State) -> None:
    for judge in (
        lambda **kw: judge_payment(request(state), "pr_x", decimals=6, same_payment=True, **kw),
        lambda **kw: judge_redemption(request(state), "pr_x", decimals=6, now=NOW, **kw),
    ):
        other_tool = judge(tool="other", price=50_000)
        assert isinstance(other_tool, PaymentMismatch) and "'other'" in str(other_tool)
        dearer = judge(tool="search", price=50_001)
        assert isinstance(dearer, PaymentMismatch) and "$0.05" in str(dearer)


def test_an_unknown_request_is_refused_alike_for_payment_and_redemption() -> None:
    paid = judge_payment(None, "pr_nope", tool="search", price=1, decimals=6, same_payment=False)
    redeemed = judge_redemption(None, "pr_nope", tool="search", price=1, decimals=6, now=NOW)
    assert isinstance(paid, UnknownPaymentRequest) and isinstance(redeemed, UnknownPaymentRequest)
    assert str(paid) == str(redeemed)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("expired", [False, True])
def test_a_redemption_for_every_state(state: State, expired: bool) -> None:
    stored = request(state, expires_at=NOW - 1 if expired else NOW + 600)
    judged = judge_redemption(stored, "pr_x", tool="search", price=50_000, decimals=6, now=NOW)
    if state is State.ISSUED:
        assert (isinstance(judged, PaymentExpired)) if expired else (judged is Judgement.CHALLENGE)
    else:
        assert judged is Judgement.CLAIM_PAID


EXPECTED_REFUSAL_TO_PAY = {
    State.ISSUED: None,
    State.SETTLING: PaymentInProgress,
    State.PAID: PaymentReplayed,
    State.REDEEMING: PaymentReplayed,
    State.CONSUMED: PaymentReplayed,
    State.EXPIRED: PaymentExpired,
}


@pytest.mark.parametrize("state", list(State))
def test_what_every_state_means_to_a_payer(state: State) -> None:
    refusal = refusal_to_pay(request(state), NOW)
    expected = EXPECTED_REFUSAL_TO_PAY[state]
    assert refusal is None if expected is None else isinstance(refusal, expected)
    overdue = refusal_to_pay(request(state, expires_at=NOW), NOW)
    assert isinstance(overdue, PaymentExpired) if state is State.ISSUED else type(overdue) is type(refusal)


@pytest.mark.parametrize("state", [*State, None])
def test_a_conflict_carries_the_typed_state_and_says_it(state: State | None) -> None:
    conflict = StateConflict("pr_x", Event.CLAIM, state)
    assert conflict.current is state
    assert (state.value if state else "missing") in str(conflict)
    told = refusal_after_conflict(conflict)
    expected = {
        State.SETTLING: PaymentInProgress,
        State.REDEEMING: PaymentInProgress,
        State.CONSUMED: PaymentReplayed,
        State.PAID: PaymentReplayed,
        State.EXPIRED: PaymentExpired,
    }.get(state, UnknownPaymentRequest)  # type: ignore[arg-type]
    assert type(told) is expected
    assert "pr_x" in str(told)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("lease_until", [None, NOW - 1, NOW, NOW + 1])
def test_the_lapsed_lease_rule(state: State, lease_until: float | None) -> None:
    lapsed = lease_until is not None and lease_until < NOW
    assert lease_lapsed(lease_until, NOW) is lapsed
    assert claimable(state, lease_until, NOW) is (
        state is State.PAID or (state is State.REDEEMING and lapsed)
    )


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize(
    ("lease_until", "settling_since", "gone"),
    [
        (NOW - 1, NOW, True),  # its lease lapsed, however recent its start
        (NOW + 1, NOW - 10_000, False),  # a live lease keeps it, however old
        (None, NOW - 301, True),
        (None, NOW - 300, False),
        (None, None, True),  # nobody recorded when it began: presumed gone
    ],
)
def test_when_a_settler_is_presumed_gone(
    state: State, lease_until: float | None, settling_since: float | None, gone: bool
) -> None:
    stored = request(state, lease_until=lease_until, settling_since=settling_since)
    assert settler_presumed_gone(stored, NOW, 300) is (gone and state is State.SETTLING)


def test_only_a_settlement_may_be_recorded_with_a_claim() -> None:
    for event, transition in TRANSITIONS.items():
        assert transition.target_for(claimed=False) is transition.target
        if event is Event.SETTLED:
            assert transition.target_for(claimed=True) is State.REDEEMING
        else:
            with pytest.raises(LedgerError):
                transition.target_for(claimed=True)
