"""The payment flow without a chain or a database: every step × every outcome × every order.

`PaidRun` is driven through every path its orders allow; each path's commands are
checked against the table below, written out by hand from the behaviour the gate
promises (DESIGN.md §3). Every report the run is not waiting for must be refused.
"""

from __future__ import annotations

import itertools

import pytest

from x402_mcp.core.flow import (
    ORDERS,
    Answer,
    Command,
    FlowError,
    Order,
    Outcome,
    PaidRun,
    Step,
    order_for,
)

V, S, R, RS, C = Step.VERIFY, Step.SETTLE, Step.RUN, Step.RUN_WHILE_SETTLING, Step.CONSUME
OK, NO, CRASH = Outcome.OK, Outcome.REFUSED, Outcome.CRASHED
FAIL, RAISE, CANCEL = Outcome.FAILED, Outcome.RAISED, Outcome.CANCELLED
LATER, REFUND, CORRECT = Outcome.DEFERRED, Outcome.DO_NOT_RUN, Outcome.CORRECTIVE
RELEASE_CLAIM, RELEASE_PAYMENT = Command.RELEASE_CLAIM, Command.RELEASE_PAYMENT

BEFORE, AFTER, OVERLAP = Order.SETTLE_THEN_RUN, Order.VERIFY_RUN_SETTLE, Order.VERIFY_RUN_WHILE_SETTLING
GATE_ORDERS = (BEFORE, AFTER, OVERLAP, Order.REDEEM)

# What each step may come to, as a driver reports it.
OUTCOMES_OF: dict[Step, frozenset[Outcome]] = {
    V: frozenset({OK, NO, CRASH, LATER, REFUND, CORRECT}),
    S: frozenset({OK, NO, CRASH}),
    R: frozenset({OK, FAIL, RAISE, CANCEL}),
    C: frozenset({OK, NO, CRASH}),
}

# Verification that does not go on: the same in every order.
VERIFY_ENDS = {
    ((V, NO),): (Answer.REFUSE,),
    ((V, CRASH),): (Answer.CRASH,),
    ((V, REFUND),): (Command.REFUND, Answer.REFUSE),
    ((V, CORRECT),): (Answer.CHALLENGE,),
}

# Run, then charge: the spec's order, and where a deferred (escrowed) verification goes.
RUN_THEN_CHARGE = {
    ((R, FAIL),): (RELEASE_PAYMENT, Answer.TOOL_FAILED),
    ((R, RAISE),): (RELEASE_PAYMENT, Answer.RERAISE),
    ((R, CANCEL),): (RELEASE_PAYMENT, Answer.RERAISE),
    ((R, OK), (S, NO)): (Answer.WITHHELD,),
    ((R, OK), (S, CRASH)): (Answer.UNCONFIRMED,),
    ((R, OK), (S, OK), (C, OK)): (Answer.RESULT,),
    ((R, OK), (S, OK), (C, NO)): (Answer.REFUSE,),
    ((R, OK), (S, OK), (C, CRASH)): (Answer.UNRECORDED,),
}

SETTLE_THEN_RUN = {
    ((S, NO),): (Answer.REFUSE,),
    ((S, CRASH),): (Answer.CRASH,),
    ((S, OK), (R, FAIL)): (RELEASE_CLAIM, Answer.TOOL_FAILED),
    ((S, OK), (R, RAISE)): (RELEASE_CLAIM, Answer.RERAISE),
    ((S, OK), (R, CANCEL)): (RELEASE_CLAIM, Answer.RERAISE),
    ((S, OK), (R, OK), (C, OK)): (Answer.RESULT,),
    ((S, OK), (R, OK), (C, NO)): (Answer.REFUSE,),
    ((S, OK), (R, OK), (C, CRASH)): (Answer.UNRECORDED,),
}

# Settling while the tool runs: (settlement, run) → what follows, once both are in.
OVERLAPPED = {
    (OK, OK): None,  # goes on to consume
    (OK, FAIL): (RELEASE_CLAIM, Answer.FAILED_BUT_PAID),
    (OK, RAISE): (RELEASE_CLAIM, Answer.FAILED_BUT_PAID),
    (OK, CANCEL): (RELEASE_CLAIM, Answer.RERAISE),
    (NO, OK): (Answer.WITHHELD,),
    (NO, FAIL): (Answer.TOOL_FAILED,),
    (NO, RAISE): (Answer.RERAISE,),
    (NO, CANCEL): (Answer.RERAISE,),
    (CRASH, OK): (Answer.UNCONFIRMED,),
    (CRASH, FAIL): (Answer.FAILED_UNCONFIRMED,),
    (CRASH, RAISE): (Answer.FAILED_UNCONFIRMED,),
    (CRASH, CANCEL): (Answer.RERAISE,),
}


def expected_paths(order: Order) -> dict[tuple[tuple[Step, Outcome], ...], tuple[object, ...]]:
    """Every complete path of `order` (the reports, in order) → the commands after the last."""
    if order is Order.REDEEM:
        return {path[1:]: then for path, then in SETTLE_THEN_RUN.items() if path[0] == (S, OK)}
    paths = dict(VERIFY_ENDS)
    paths |= {((V, LATER), *path): then for path, then in RUN_THEN_CHARGE.items()}
    if order is BEFORE:
        paths |= {((V, OK), *path): then for path, then in SETTLE_THEN_RUN.items()}
    elif order is AFTER:
        paths |= {((V, OK), *path): then for path, then in RUN_THEN_CHARGE.items()}
    else:
        for (settled, ran), then in OVERLAPPED.items():
            both = ((S, settled), (R, ran))
            for reported in (both, both[::-1]):  # either half may come back first
                if then is None:
                    for consumed, end in (
                        (OK, Answer.RESULT),
                        (NO, Answer.REFUSE),
                        (CRASH, Answer.UNRECORDED),
                    ):
                        paths[((V, OK), *reported, (C, consumed))] = (end,)
                else:
                    paths[((V, OK), *reported)] = then
    return paths


def drive(order: Order, path: tuple[tuple[Step, Outcome], ...]) -> tuple[PaidRun, list[object]]:
    """Report `path` to a new run of `order`; every command it answered, in order."""
    run = PaidRun(order)
    log: list[object] = list(run.start())
    for step, outcome in path:
        log.extend(run.report(step, outcome))
    return run, log


def reachable(order: Order) -> list[tuple[tuple[Step, Outcome], ...]]:
    """Every prefix of a complete path of `order`: each position a run of it can be in."""
    prefixes = {path[:cut] for path in expected_paths(order) for cut in range(len(path) + 1)}
    return sorted(prefixes, key=lambda path: (len(path), [(s.value, o.value) for s, o in path]))


@pytest.mark.parametrize("order", GATE_ORDERS)
def test_every_path_of_every_order_ends_as_the_table_says(order: Order) -> None:
    for path, then in expected_paths(order).items():
        run, log = drive(order, path)
        assert run.done, path
        assert tuple(log[-len(then) :]) == then, path
        assert isinstance(log[-1], Answer), path


@pytest.mark.parametrize(
    ("order", "steps"),
    [
        (BEFORE, [V, S, R, C]),
        (AFTER, [V, R, S, C]),
        (OVERLAP, [V, RS, C]),
        (Order.REDEEM, [R, C]),
    ],
)
def test_a_good_call_takes_its_orders_steps(order: Order, steps: list[Step]) -> None:
    """The happy path of each order asks for exactly its steps, in its order."""
    run = PaidRun(order)
    asked: list[object] = list(run.start())
    for step in steps:
        halves = (S, R) if step is RS else (step,)
        for half in halves:
            asked.extend(run.report(half, OK))
    assert asked == [*steps, Answer.RESULT]


@pytest.mark.parametrize("order", GATE_ORDERS)
def test_every_report_at_every_position_is_answered_or_refused(order: Order) -> None:
    """Every position × every step × every outcome: the expected ones go on, the rest are refused."""
    paths = expected_paths(order)
    for position in reachable(order):
        for step, outcome in itertools.product(Step, Outcome):
            allowed = any(path[: len(position) + 1] == (*position, (step, outcome)) for path in paths)
            run, _ = drive(order, position)
            if allowed:
                answered = run.report(step, outcome)
                assert answered or run.awaiting is RS, (position, step, outcome)
            else:
                with pytest.raises(FlowError):
                    run.report(step, outcome)


@pytest.mark.parametrize("order", GATE_ORDERS)
def test_the_tool_never_runs_unless_verified(order: Order) -> None:
    """Invariant 1, as the flow sees it: RUN (or RUN_WHILE_SETTLING) is asked for only after
    VERIFY came back OK or DEFERRED, and a settlement before the run came back OK."""
    for path in expected_paths(order):
        run = PaidRun(order)
        asked: list[object] = list(run.start())
        for index, (step, outcome) in enumerate(path):
            answered = run.report(step, outcome)
            if R in answered or RS in answered:
                before = path[: index + 1]
                if order is Order.REDEEM:
                    continue  # paid before this call
                assert before[0][1] in (OK, LATER)
                assert all(o is OK for s, o in before[1:] if s is S)
            asked.extend(answered)


def test_deferred_verification_continues_on_the_charge_after_success_row() -> None:
    run = PaidRun(BEFORE)
    run.start()
    assert run.report(V, LATER) == (R,)
    assert run.order is Order.CHARGE_AFTER_SUCCESS
    assert ORDERS[Order.CHARGE_AFTER_SUCCESS][1:] == (R, S, C)


def test_a_half_reported_twice_while_overlapping_is_refused() -> None:
    run = PaidRun(OVERLAP)
    run.start()
    assert run.report(V, OK) == (RS,)
    assert run.report(S, OK) == ()
    with pytest.raises(FlowError):
        run.report(S, OK)
    assert run.report(R, OK) == (C,)


def test_nothing_is_awaited_after_the_answer() -> None:
    run, log = drive(BEFORE, ((V, NO),))
    assert log[-1] is Answer.REFUSE
    assert run.awaiting is None
    for step, outcome in itertools.product(Step, Outcome):
        with pytest.raises(FlowError):
            run.report(step, outcome)


@pytest.mark.parametrize(
    ("settle_after", "overlap", "order"),
    [(False, False, BEFORE), (True, False, AFTER), (True, True, OVERLAP), (False, True, BEFORE)],
)
def test_order_for_a_paid_tool(settle_after: bool, overlap: bool, order: Order) -> None:
    assert order_for(settle_after=settle_after, overlap=overlap) is order


def test_the_flow_names_no_scheme_chain_or_network() -> None:
    """A new scheme joins through the driver's registry, never through the flow."""
    from pathlib import Path

    import x402_mcp.core.flow as flow

    source = Path(flow.__file__).read_text(encoding="utf-8")
    code = source.split('"""', 2)[2]  # past the module docstring, which explains why
    for word in ("exact", "evm", "solana", "eip155", "eip3009", "eip-3009", "batch"):
        assert word not in code.lower(), word
