"""Whatever shape an outsider gives a paid call, it gets a clear tool error and leaves the
ledger as it was, but for one bounded audit line: odd request ids, odd payments, invalid
arguments, broken price functions, and streams of refusals."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult
from pydantic import Field

from tests.gate.conftest import Shop, challenge_of, connectable, new_server, text_of
from tests.ledger.conftest import fresh_schema, postgres_url  # noqa: F401  (a fixture)
from tests.page.conftest import serving
from x402_mcp import Payments, paid
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_REQUEST_ID
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.ids import new_request_id
from x402_mcp.core.wire import PaymentPayload
from x402_mcp.ledger.base import Ledger

pytestmark = pytest.mark.anyio

ANSWER_LIMIT = 1_200
"""No refusal needs more characters than this, whatever it was sent."""
AUDIT_LIMIT = 600

HUGE = "pr_" + "A" * 100_000
HOSTILE_IDS: dict[str, Any] = {
    "100 kB": HUGE,
    "NUL byte": "pr_" + "a" * 20 + "\x00",
    "too short": "pr_nope",
    "bidi override": "pr_\u202eabcdefghijklmnopqrstu",
    "number": 42,
    "array": ["pr_a", "pr_b"],
    "object": {"id": "pr_x"},
    "boolean": True,
}


@pytest.fixture(autouse=True)
async def opened(shop: Shop) -> None:
    await shop.payments.open()  # so that the tests can count rows before the first call


async def ledger_rows(ledger: Ledger) -> tuple[int, int]:
    return len(await ledger.requests()), len(await ledger.audit_trail())


def assert_bounded_refusal(result: CallToolResult, *words: str) -> None:
    text = text_of(result)
    assert result.is_error, text
    assert "Internal" not in text and "ledger failed" not in text, text
    assert len(text) < ANSWER_LIMIT, len(text)
    # Ids are echoed in at most 80 characters, any other outside text in at most 400.
    assert "A" * 401 not in text and "\u202e" not in text and "\x00" not in text
    for word in words:
        assert word in text, text


async def assert_one_bounded_audit_line(ledger: Ledger, before: tuple[int, int]) -> None:
    requests, audits = await ledger_rows(ledger)
    assert requests == before[0], "a refusal quoted something"
    assert audits == before[1] + 1
    newest = max(await ledger.audit_trail(), key=lambda line: line[0])
    assert newest[2] == "refused" and len(newest[3]) < AUDIT_LIMIT


# -- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["argument", "meta"])
@pytest.mark.parametrize("case", sorted(HOSTILE_IDS))
async def test_an_id_that_cannot_be_one_is_refused_unqueried_and_unechoed(
    client: Client, shop: Shop, route: str, case: str
) -> None:
    value = HOSTILE_IDS[case]
    before = await ledger_rows(shop.ledger)
    if route == "argument":
        result = await client.call_tool("answer", {"question": "q", "payment_request_id": value})
    else:
        result = await client.call_tool("answer", {"question": "q"}, meta={META_REQUEST_ID: value})

    assert_bounded_refusal(result, "is not a payment request id", "call answer again without a payment")
    assert result.structured_content is None
    await assert_one_bounded_audit_line(shop.ledger, before)
    assert shop.runs == {}


async def test_an_empty_or_null_id_names_no_request(client: Client, shop: Shop) -> None:
    for value in ("", None):
        challenge_of(await client.call_tool("answer", {"question": "q", "payment_request_id": value}))
    assert len(await shop.ledger.requests()) == 2


async def test_the_argument_and_meta_must_not_name_two_requests(client: Client, shop: Shop) -> None:
    one, other = new_request_id(), new_request_id()
    result = await client.call_tool(
        "answer", {"question": "q", "payment_request_id": one}, meta={META_REQUEST_ID: other}
    )
    assert_bounded_refusal(result, f"payment_request_id names {one}", other)


@pytest.mark.postgres
async def test_on_postgresql_an_odd_id_is_refused_the_same_way(
    shop: Shop,
    postgres_url: str,  # noqa: F811
) -> None:
    async with fresh_schema(postgres_url) as store:
        payments = Payments(
            pay_to=shop.payee,
            network=shop.chain.network_info,
            settlement=shop.chain.settlement(),
            ledger=store.ledger(),
        )
        server = new_server(shop.framework, "pg", payments)

        @server.tool()
        @paid(price="0.05")
        def answer(question: str) -> str:
            return question

        async with Client(connectable(server)) as client:
            for value in (HOSTILE_IDS["NUL byte"], HUGE):
                result = await client.call_tool("answer", {"question": "q", "payment_request_id": value})
                assert_bounded_refusal(result, "is not a payment request id")
        await payments.ledger.close()


# -- payments ---------------------------------------------------------------------------------

HOSTILE_PAYMENTS: dict[str, tuple[Any, str]] = {
    "number": (7, "must be a JSON object (or a JSON or base64 string of one), not a number"),
    "array": ([{"x402Version": 2}], "not an array"),
    "boolean": (False, "not a boolean"),
    "huge string": ("A" * 200_000, "at most 16384"),
    "huge version": ({"x402Version": "A" * 15_000}, "unsupported x402Version"),
    "huge id": (None, "is not a payment request id"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PAYMENTS))
async def test_a_payment_of_the_wrong_shape_is_refused_and_stores_one_bounded_line(
    client: Client, shop: Shop, case: str
) -> None:
    raw, words = HOSTILE_PAYMENTS[case]
    if case == "huge id":
        option = challenge_of(await client.call_tool("answer", {"question": "q"})).accepts[0]
        forged = option.model_copy(update={"extra": {**option.extra, "paymentRequestId": "pr_" + "A" * 9000}})
        raw = PaymentPayload(accepted=forged, payload=sign_authorization(shop.payer, forged)).dump()
    before = await ledger_rows(shop.ledger)
    balances = shop.balances()

    result = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: raw})

    assert_bounded_refusal(result, words)
    await assert_one_bounded_audit_line(shop.ledger, before)
    assert shop.runs == {} and shop.balances() == balances


async def test_a_stream_of_bad_payments_mints_nothing_and_never_fills_the_cap(
    client: Client, shop: Shop
) -> None:
    shop.payments.sweeper.max_open_per_caller = 3
    quoted = await client.call_tool("answer", {"question": "q"})
    option = challenge_of(quoted).accepts[0]
    bare = option.model_copy(
        update={"extra": {"name": option.extra["name"], "version": option.extra["version"]}}
    )
    unknown = option.model_copy(update={"extra": {**option.extra, "paymentRequestId": new_request_id()}})
    bad = [
        "not json",
        PaymentPayload(accepted=bare, payload=sign_authorization(shop.payer, bare)).dump(),
        PaymentPayload(accepted=unknown, payload=sign_authorization(shop.payer, unknown)).dump(),
        sign_payment(shop.payer, challenge_of(quoted)).dump(),  # for answer, sent to summarize below
    ]
    before = await ledger_rows(shop.ledger)

    for attempt in range(32):
        payment = bad[attempt % len(bad)]
        if attempt % len(bad) == 3:
            result = await client.call_tool("summarize", {"words": "a b c"}, meta={META_PAYMENT: payment})
        else:
            result = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})
        assert result.is_error and result.structured_content is None, text_of(result)

    requests, audits = await ledger_rows(shop.ledger)
    assert (requests, audits) == (before[0], before[1] + 32)
    # The caller's quota is untouched: two more quotes fit under the cap of three.
    challenge_of(await client.call_tool("answer", {"question": "q"}))
    challenge_of(await client.call_tool("answer", {"question": "q"}))
    assert shop.runs == {}


# -- arguments and price functions --------------------------------------------------------------


class Priced:
    """A server whose price functions misbehave in every way, and how often they were called."""

    def __init__(self, shop: Shop) -> None:
        self.priced: list[str] = []
        self.runs: list[str] = []
        self.returns: Any = "0.05"
        self.payments = Payments(
            pay_to=shop.payee,
            network=shop.chain.network_info,
            settlement=shop.chain.settlement(),
            ledger=shop.ledger,
        )
        self.server = new_server(shop.framework, "priced", self.payments)
        server = self.server

        def raising(pages: int) -> str:
            self.priced.append("raising")
            raise RuntimeError("cannot reach the price database at postgres://admin:hunter2@db")

        def returning(pages: int) -> Any:
            self.priced.append("returning")
            return self.returns

        def wanting(pages: int, colour: str) -> str:
            self.priced.append("wanting")
            return "0.05"

        def per_page(pages: int, quality: str = "draft") -> str:
            self.priced.append(f"per_page {pages} {quality}")
            return str(Decimal("0.01") * pages)

        @server.tool()
        @paid(price=raising)
        def broken(pages: int) -> str:
            self.runs.append("broken")
            return "ran"

        @server.tool()
        @paid(price=returning)
        def garbage(pages: int) -> str:
            self.runs.append("garbage")
            return "ran"

        @server.tool()
        @paid(price=wanting)
        def mismatched(pages: int) -> str:
            self.runs.append("mismatched")
            return "ran"

        @server.tool()
        @paid(price=lambda pages: per_page(pages))
        def printed(
            pages: Annotated[int, Field(ge=1, le=100)], quality: str = "draft", note: str | None = None
        ) -> str:
            self.runs.append("printed")
            return "ran"


@pytest.fixture
async def priced(shop: Shop) -> AsyncIterator[tuple[Priced, Client]]:
    priced = Priced(shop)
    async with Client(connectable(priced.server)) as client:
        yield priced, client


def assert_honest_price_failure(result: CallToolResult, problem: str) -> None:
    assert_bounded_refusal(
        result, "price could not be computed", "did not run", "nothing was charged", problem
    )
    assert "hunter2" not in text_of(result)


async def test_a_price_function_that_raises_is_logged_and_answered_honestly(
    priced: tuple[Priced, Client], shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    server, client = priced
    with caplog.at_level(logging.ERROR, logger="x402_mcp"):
        result = await client.call_tool("broken", {"pages": 2})

    assert_honest_price_failure(result, "the price function raised RuntimeError")
    assert server.runs == [] and await shop.ledger.requests() == []
    [record] = [r for r in caplog.records if "could not price" in r.getMessage()]
    assert record.exc_info is not None and "price database" in str(record.exc_info[1].__cause__)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ("abc", "is not a decimal number of dollars"),
        ("-1", "at least zero"),
        ("0.0000001", "more than 6 decimal places"),
        ("1e80", "beyond 2**256 atomic units"),
        (2**300, "beyond 2**256 atomic units"),
        ("1e999999999", "beyond 2**256 atomic units"),
        ("9" * 10_000, "a short decimal string"),
        (None, "not NoneType"),
        (0.05, "is a float"),
        (True, "a boolean"),
        ({"usd": "0.05"}, "not dict"),
    ],
)
async def test_a_price_function_returning_no_price_is_named(
    priced: tuple[Priced, Client], shop: Shop, returned: Any, problem: str
) -> None:
    server, client = priced
    server.returns = returned
    result = await client.call_tool("garbage", {"pages": 1})
    assert_honest_price_failure(result, problem)
    assert server.runs == [] and await shop.ledger.requests() == []


async def test_a_price_function_that_wants_what_the_tool_lacks_is_named(
    priced: tuple[Priced, Client], shop: Shop
) -> None:
    _, client = priced
    result = await client.call_tool("mismatched", {"pages": 1})
    assert_honest_price_failure(result, "missing a required argument: 'colour'")


async def test_price_functions_get_validated_arguments_with_defaults_and_only_those_they_name(
    priced: tuple[Priced, Client],
) -> None:
    server, client = priced
    # "3" arrives as text, as some hosts send numbers; the tool's model makes it an int.
    required = challenge_of(await client.call_tool("printed", {"pages": "3", "note": "hi"}))
    assert required.accepts[0].amount == "30000"
    assert server.priced == ["per_page 3 draft"]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (None, "pages: Field required"),
        ({}, "pages: Field required"),
        ({"pages": "many"}, "pages: Input should be a valid integer"),
        ({"pages": ["A" * 100_000]}, "pages: Input should be a valid integer"),
        ({"pages": 1, "quality": 7}, "quality: Input should be a valid string"),
        ({"pages": 101}, "pages: Input should be less than or equal to 100"),
    ],
)
async def test_invalid_arguments_are_named_before_any_price_or_quote(
    priced: tuple[Priced, Client], shop: Shop, arguments: dict[str, Any] | None, problem: str
) -> None:
    server, client = priced
    result = await client.call_tool("printed", arguments)
    assert_bounded_refusal(result, "The arguments of printed are invalid", "nothing was charged", problem)
    assert server.priced == [] and server.runs == []
    assert await shop.ledger.requests() == [] and await shop.ledger.audit_trail() == []


async def test_a_fixed_price_tool_checks_its_arguments_before_quoting(client: Client, shop: Shop) -> None:
    result = await client.call_tool("answer", {"question": {"nested": "object"}})
    assert_bounded_refusal(result, "The arguments of answer are invalid", "question")
    assert await shop.ledger.requests() == []


# -- _meta itself -----------------------------------------------------------------------------


async def _raw_call(base: str, params: dict[str, Any]) -> dict[str, Any]:
    """One `tools/call` sent as raw JSON-RPC over streamable HTTP, as a hand-rolled client would."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(base_url=base, timeout=10) as http:

        async def send(message: dict[str, Any], session: str | None = None) -> httpx2.Response:
            extra = {"Mcp-Session-Id": session} if session else {}
            return await http.post("/mcp", json=message, headers={**headers, **extra})

        hello = await send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        session = hello.headers.get("mcp-session-id")
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
        answer = await send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}, session)
    body = answer.text
    if "text/event-stream" in answer.headers.get("content-type", ""):
        body = next(line[5:] for line in body.splitlines() if line.startswith("data:"))
    reply: dict[str, Any] = json.loads(body)
    return reply


@pytest.mark.parametrize("meta", [5, "x402", [1, 2], True])
async def test_a_meta_that_is_not_an_object_is_refused_by_the_protocol_layer(shop: Shop, meta: Any) -> None:
    shop.payments.public_url = None
    async with serving(shop.http_app()) as base:
        reply = await _raw_call(base, {"name": "answer", "arguments": {"question": "q"}, "_meta": meta})
        # And the server is unharmed: the same call with a proper _meta is quoted.
        fine = await _raw_call(base, {"name": "answer", "arguments": {"question": "q"}, "_meta": {}})
    assert "error" in reply and reply["error"]["code"] == -32602, reply  # invalid params, not internal
    assert await shop.ledger.requests() != [] and fine["result"]["isError"] is True
    # A typed tool's challenge carries its PaymentRequired in content[0] (see fit_output_schema).
    assert json.loads(fine["result"]["content"][0]["text"])["x402Version"] == 2
    assert shop.runs == {}


async def test_a_null_payment_sent_raw_is_refused_by_name(shop: Shop) -> None:
    # The SDK's own client leaves null values out of _meta; a hand-rolled one may not.
    shop.payments.public_url = None
    async with serving(shop.http_app()) as base:
        before = await ledger_rows(shop.ledger)
        reply = await _raw_call(
            base, {"name": "answer", "arguments": {"question": "q"}, "_meta": {META_PAYMENT: None}}
        )
    result = reply["result"]
    assert result["isError"] is True and "structuredContent" not in result
    assert (
        "must be a JSON object (or a JSON or base64 string of one), not null" in result["content"][0]["text"]
    )
    await assert_one_bounded_audit_line(shop.ledger, before)
