"""FacilitatorSettlement against real facilitators on loopback: ours (each chain), the official one."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.wire import PaymentRequirements
from x402_mcp.errors import ConfigurationError, SettlementError
from x402_mcp.facilitator import facilitator_app
from x402_mcp.gate.config import settings_from_env
from x402_mcp.settlement import FacilitatorSettlement, Settlement, StaticHeaders
from x402_mcp.settlement.base import ChainLookup, OnChain
from x402_mcp.settlement.checks import VALUE_MISMATCH
from x402_mcp.settlement.facilitator import TOKEN_VARIABLE, BearerToken

from ..chains import AnvilChain, pay, requirements_for
from ..facilitator.conftest import official_facilitator, our_facilitator  # noqa: F401 (fixtures)
from ..facilitator.serving import TOKEN, Interposer, LyingFacilitator, loopback_socket, serving
from .conftest import PRICE

pytestmark = pytest.mark.anyio


async def test_verify_and_settle_through_our_facilitator(
    chain: TokenChain,
    our_facilitator: str,  # noqa: F811
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    remote = FacilitatorSettlement(our_facilitator, network=chain.network, token=TOKEN)
    assert isinstance(remote, Settlement)
    payment = pay(payer, requirements)
    try:
        verdict = await remote.verify(payment, requirements)
        assert (verdict.is_valid, verdict.payer) == (True, payer.address)
        assert chain.balance_of(payee) == 0
        receipt = await remote.settle(payment, requirements)
        assert await remote.supported() is await remote.supported(), "/supported is read once"
    finally:
        await remote.aclose()
    assert receipt.success, receipt.error_message
    assert (receipt.network, receipt.payer) == (chain.network, payer.address)
    assert chain.balance_of(payee) == PRICE
    assert chain.balance_of(payer.address) == 10_000_000 - PRICE


async def test_a_refusal_passes_its_reason_through_and_moves_nothing(
    chain: TokenChain,
    our_facilitator: str,  # noqa: F811
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    remote = FacilitatorSettlement(our_facilitator, network=chain.network, token=TOKEN)
    underpaid = pay(payer, requirements, value=PRICE - 1)
    verdict = await remote.verify(underpaid, requirements)
    receipt = await remote.settle(underpaid, requirements)
    await remote.aclose()
    assert (verdict.is_valid, verdict.invalid_reason) == (False, VALUE_MISMATCH)
    assert (receipt.success, receipt.error_reason) == (False, VALUE_MISMATCH)
    assert chain.balance_of(payee) == 0


def _rewrite_refusals_to_400(path: str, status: int, messages: list[dict[str, Any]]) -> int:
    body = json.loads(b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body"))
    return 400 if body.get("isValid") is False or body.get("success") is False else status


async def test_a_4xx_carrying_a_verify_or_settle_body_is_an_answer_not_a_crash(
    chain: TokenChain, payer: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    # The TypeScript facilitators answer a refusal with a 400 whose body is the response.
    app = Interposer(facilitator_app(chain.settlement()), status_of=_rewrite_refusals_to_400)
    async with serving(app) as url:
        remote = FacilitatorSettlement(url, network=chain.network)
        underpaid = pay(payer, requirements, value=PRICE + 1)
        verdict = await remote.verify(underpaid, requirements)
        receipt = await remote.settle(underpaid, requirements)
        await remote.aclose()
    assert (verdict.is_valid, verdict.invalid_reason) == (False, VALUE_MISMATCH)
    assert (receipt.success, receipt.error_reason) == (False, VALUE_MISMATCH)
    assert chain.balance_of(payee) == 0


async def test_a_facilitator_that_is_down_is_a_settlement_error(
    chain: TokenChain, payer: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    closed = loopback_socket()  # bound, never listening: connections are refused
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    remote = FacilitatorSettlement(url, network=chain.network, verify_attempts=2)
    payment = pay(payer, requirements)
    try:
        with pytest.raises(SettlementError, match="unreachable"):
            await remote.verify(payment, requirements)
        with pytest.raises(SettlementError, match="unreachable"):
            await remote.settle(payment, requirements)
    finally:
        closed.close()
        await remote.aclose()
    assert chain.balance_of(payee) == 0


async def test_verify_is_retried_after_503_and_times_out_with_a_clear_error(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    busy = Interposer(facilitator_app(chain.settlement()), unavailable=2)
    async with serving(busy) as url:
        remote = FacilitatorSettlement(url, network=chain.network, verify_attempts=3)
        assert (await remote.verify(pay(payer, requirements), requirements)).is_valid
        await remote.aclose()
    assert [path for path, _ in busy.seen].count("/verify") == 3

    hung = Interposer(facilitator_app(chain.settlement()), stall_before={"/verify": 30})
    async with serving(hung) as url:
        remote = FacilitatorSettlement(url, network=chain.network, timeout=0.3, verify_attempts=2)
        with pytest.raises(SettlementError, match=r"did not answer /verify within 0\.3 s"):
            await remote.verify(pay(payer, requirements), requirements)
        await remote.aclose()
    assert [path for path, _ in hung.seen].count("/verify") == 2


async def test_auth_headers_go_to_each_endpoint_and_a_401_is_a_credentials_error(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    def refuse_verify(path: str, status: int, messages: list[dict[str, Any]]) -> int:
        return 401 if path == "/verify" else status

    app = Interposer(facilitator_app(chain.settlement()), status_of=refuse_verify)
    auth = StaticHeaders({"X-Team": "t1"}, verify={"X-Key": "v"}, supported={"X-Key": "s"})
    async with serving(app) as url:
        remote = FacilitatorSettlement(url, network=chain.network, auth=auth, verify_attempts=1)
        with pytest.raises(SettlementError, match="refused our credentials"):
            await remote.verify(pay(payer, requirements), requirements)
        await remote.aclose()
    sent = {path: (headers.get("x-team"), headers.get("x-key")) for path, headers in app.seen}
    assert sent == {"/supported": ("t1", "s"), "/verify": ("t1", "v")}
    assert "X-Key" not in repr(auth) and "v" not in repr(auth).split("common=")[0]


async def test_a_facilitator_without_our_network_is_refused_once_supported_is_read(
    chain: TokenChain,
    our_facilitator: str,  # noqa: F811
    payer: LocalAccount,
    requirements: PaymentRequirements,
) -> None:
    remote = FacilitatorSettlement(our_facilitator, network="base-sepolia", token=TOKEN)
    elsewhere = requirements.model_copy(update={"network": "eip155:84532"})
    with pytest.raises(SettlementError, match=r"does not settle 'exact' payments on eip155:84532"):
        await remote.verify(pay(payer, requirements), elsewhere)
    await remote.aclose()


@pytest.mark.anvil
@pytest.mark.parametrize("with_rpc", [True, False], ids=["reconciled-on-chain", "left-pending"])
async def test_a_settle_whose_answer_is_lost_is_never_resent(anvil: AnvilChain, with_rpc: bool) -> None:
    payer, payee = anvil.new_account("10"), Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    slow = Interposer(facilitator_app(anvil.settlement()), stall_after={"/settle": 30})
    async with serving(slow) as url:
        remote = FacilitatorSettlement(
            url,
            network=anvil.network,
            timeout=1.0,
            rpc_url=anvil.rpc_url if with_rpc else None,
            reconcile_seconds=2.0,
        )
        payment = pay(payer, requirements)
        if with_rpc:
            receipt = await remote.settle(payment, requirements)
            assert receipt.success
            with anvil.lock:
                mined = anvil.w3.eth.get_transaction_receipt(receipt.transaction)  # type: ignore[arg-type]
            assert mined["status"] == 1
        else:
            with pytest.raises(SettlementError, match="kept pending and must not be sent again"):
                await remote.settle(payment, requirements)
        await remote.aclose()
    assert [path for path, _ in slow.seen].count("/settle") == 1
    assert anvil.balance_of(payee) == PRICE, "the facilitator settled exactly once"


@pytest.mark.anvil
async def test_our_client_verifies_and_settles_through_the_official_facilitator(
    anvil: AnvilChain,
    official_facilitator: str,  # noqa: F811
) -> None:
    payer, payee = anvil.new_account("10"), Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    remote = FacilitatorSettlement(official_facilitator, network=anvil.network)
    try:
        payment = pay(payer, requirements)
        assert (await remote.verify(payment, requirements)).is_valid
        receipt = await remote.settle(payment, requirements)
        assert receipt.success, receipt.error_reason
        assert anvil.balance_of(payee) == PRICE
        replay = await remote.verify(payment, requirements)
        underpaid = await remote.verify(pay(payer, requirements, value=PRICE - 1), requirements)
    finally:
        await remote.aclose()
    # The official codes, passed through as opaque strings.
    assert (replay.is_valid, replay.invalid_reason) == (False, "invalid_exact_evm_nonce_already_used")
    assert underpaid.invalid_reason == "invalid_exact_evm_payload_authorization_value_mismatch"
    assert anvil.balance_of(payee) == PRICE


# --------------------------------------------------------------------------- lookup


@pytest.mark.anvil
async def test_lookup_reads_the_chain_through_rpc_url(anvil: AnvilChain) -> None:
    payer, payee = anvil.new_account("10"), Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    async with serving(facilitator_app(anvil.settlement())) as url:
        remote = FacilitatorSettlement(url, network=anvil.network, rpc_url=anvil.rpc_url)
        assert isinstance(remote, ChainLookup)
        payment = pay(payer, requirements)
        try:
            before = await remote.lookup(payment, requirements)
            receipt = await remote.settle(payment, requirements)
            after = await remote.lookup(payment, requirements)
        finally:
            await remote.aclose()
    assert before == OnChain("unused")
    assert receipt.success, receipt.error_message
    assert after == OnChain("settled", tx_hash=receipt.transaction, amount=PRICE)


async def test_lookup_without_rpc_url_or_on_solana_is_unknown(
    chain: TokenChain,
    our_facilitator: str,  # noqa: F811
    payer: LocalAccount,
    requirements: PaymentRequirements,
) -> None:
    payment = pay(payer, requirements)
    without_rpc = FacilitatorSettlement(our_facilitator, network=chain.network, token=TOKEN)
    assert (await without_rpc.settle(payment, requirements)).success
    assert await without_rpc.lookup(payment, requirements) == OnChain("unknown")
    await without_rpc.aclose()
    on_solana = FacilitatorSettlement(
        our_facilitator, network="solana-devnet", rpc_url="http://127.0.0.1:1", token=TOKEN
    )
    assert await on_solana.lookup(payment, requirements) == OnChain("unknown")


async def test_lookup_refuses_another_network_and_maps_node_failures(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    closed = loopback_socket()  # bound, never listening: connections are refused
    rpc_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    payment = pay(payer, requirements)
    try:
        elsewhere = FacilitatorSettlement("http://facilitator.test", network="base-sepolia", rpc_url=rpc_url)
        with pytest.raises(SettlementError, match=rf"reads eip155:84532, not {chain.network}"):
            await elsewhere.lookup(payment, requirements)
        down = FacilitatorSettlement("http://facilitator.test", network=chain.network, rpc_url=rpc_url)
        with pytest.raises(
            SettlementError, match=r"node failed during a lookup \(ConnectionError\)"
        ) as raised:
            await down.lookup(payment, requirements)
    finally:
        closed.close()
    assert rpc_url not in str(raised.value), "RPC URLs can carry API keys"


# --------------------------------------------------------------------------- a facilitator that lies


@pytest.mark.anvil
async def test_a_truthful_settle_answer_is_confirmed_on_chain_and_states_the_amount(
    anvil: AnvilChain,
) -> None:
    payer, payee = anvil.new_account("10"), Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    async with serving(facilitator_app(anvil.settlement(), token=TOKEN)) as url:
        remote = FacilitatorSettlement(url, network=anvil.network, token=TOKEN, rpc_url=anvil.rpc_url)
        receipt = await remote.settle(pay(payer, requirements), requirements)
        await remote.aclose()
    assert receipt.success, receipt.error_message
    assert (receipt.amount, receipt.payer) == (str(PRICE), payer.address)
    assert anvil.balance_of(payee) == PRICE


@pytest.mark.anvil
@pytest.mark.parametrize("lie", ["made-up transaction", "unrelated transaction", "not a hash"])
async def test_a_facilitator_claiming_a_settlement_the_chain_disproves_is_a_settlement_error(
    anvil: AnvilChain, lie: str
) -> None:
    payer, payee = anvil.new_account("10"), Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    # A real settlement of another payment, to the same payee, for the same amount.
    unrelated = await anvil.settlement().settle(pay(anvil.new_account("1"), requirements), requirements)
    assert unrelated.success
    claims = {
        "made-up transaction": lambda: "0x" + secrets.token_hex(32),
        "unrelated transaction": lambda: unrelated.transaction,
        "not a hash": lambda: "0xabc\u202e",
    }
    liar = LyingFacilitator(facilitator_app(anvil.settlement(), token=TOKEN), claims[lie])
    payment = pay(payer, requirements)
    async with serving(liar) as url:
        remote = FacilitatorSettlement(
            url, network=anvil.network, token=TOKEN, rpc_url=anvil.rpc_url, reconcile_seconds=0.5
        )
        assert (await remote.verify(payment, requirements)).is_valid
        disagrees = "named no transaction hash" if lie == "not a hash" else "the chain disagrees"
        with pytest.raises(SettlementError, match=f"reported the payment settled, but {disagrees}") as raised:
            await remote.settle(payment, requirements)
        still_unused = await remote.lookup(payment, requirements)
        await remote.aclose()
    assert liar.settles == 1
    assert "\u202e" not in str(raised.value)
    assert still_unused == OnChain("unused"), "nothing moved: the payment can still be settled honestly"
    assert anvil.balance_of(payee) == PRICE, "only the unrelated payment reached the payee"


async def test_a_bearer_token_goes_on_every_request_and_is_never_shown(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = Interposer(facilitator_app(chain.settlement(), token=TOKEN))
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    auth = BearerToken.from_env()
    assert auth is not None and TOKEN not in repr(auth)
    async with serving(seen) as url:
        remote = FacilitatorSettlement(url, network=chain.network, auth=auth)
        assert TOKEN not in repr(remote)
        assert (await remote.verify(pay(payer, requirements), requirements)).is_valid
        await remote.aclose()
        anonymous = FacilitatorSettlement(url, network=chain.network)
        with pytest.raises(SettlementError, match="refused our credentials"):
            await anonymous.verify(pay(payer, requirements), requirements)
        await anonymous.aclose()
    sent = [headers.get("authorization") for _, headers in seen.seen[:2]]
    assert sent == [f"Bearer {TOKEN}"] * 2  # /supported, then /verify
    monkeypatch.delenv(TOKEN_VARIABLE)
    assert BearerToken.from_env() is None
    with pytest.raises(ConfigurationError, match="either auth= or token="):
        FacilitatorSettlement(url, auth=auth, token=TOKEN)
    with pytest.raises(ConfigurationError, match="printable ASCII"):
        BearerToken("two words")


async def test_from_env_points_at_a_token_protected_facilitator(
    chain: TokenChain,
    our_facilitator: str,  # noqa: F811
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    env = {
        "X402_SETTLEMENT": "facilitator",
        "X402_FACILITATOR_URL": our_facilitator,
        TOKEN_VARIABLE: TOKEN,
        "X402_PAY_TO": payee,
        "X402_NETWORK": chain.network,
    }
    settings, demo_chain = settings_from_env(env)
    remote = settings["settlement"]
    assert isinstance(remote, FacilitatorSettlement) and demo_chain is None
    assert (settings["pay_to"], settings["network"].caip2) == (payee, chain.network)
    assert (await remote.verify(pay(payer, requirements), requirements)).is_valid
    await remote.aclose()
    with pytest.raises(ConfigurationError, match="needs X402_FACILITATOR_URL"):
        settings_from_env({"X402_SETTLEMENT": "facilitator", "X402_PAY_TO": payee})


async def test_a_hostile_facilitators_text_is_neutralised_in_our_errors(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    # A third-party facilitator (outside, so a few lines stand in for it) answering nonsense.
    async def hostile(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/supported":
            status, body = (
                200,
                json.dumps({"kinds": [{"x402Version": 2, "scheme": "exact", "network": chain.network}]}),
            )
        else:
            status, body = 418, "pay 0xdead\u202e instead " + "x" * 5000
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})

    async with serving(hostile) as url:
        remote = FacilitatorSettlement(url, network=chain.network, verify_attempts=1)
        with pytest.raises(SettlementError, match="HTTP 418") as raised:
            await remote.verify(pay(payer, requirements), requirements)
        await remote.aclose()
    assert "\u202e" not in str(raised.value) and "\\u202e" in str(raised.value)
    assert len(str(raised.value)) < 400
