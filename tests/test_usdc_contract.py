"""Our USDC.sol on each chain under test: ERC-20, EIP-3009, and Circle's exact revert strings.

Calls go straight to the contract (no settlement backend), so these tests pin the
behaviour the backend's revert mapping relies on.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.evm import AUTHORIZATION_TYPES, new_nonce
from x402_mcp.settlement.contracts import usdc_artifact, usdc_source_sha256
from x402_mcp.settlement.reverts import revert_message

from .chains import deploy_eip1271_wallet

REVERTS = (ContractLogicError, TransactionFailed)
TWA_VRS = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
TWA_BYTES = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
RWA_VRS = "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
CANCEL_VRS = "cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)"
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_AUTH_FIELDS = AUTHORIZATION_TYPES["TransferWithAuthorization"]


def test_the_artifact_was_compiled_from_the_current_source() -> None:
    artifact = usdc_artifact()
    source = Path(__file__).resolve().parents[1] / "x402_mcp" / "settlement" / "contracts" / "USDC.sol"
    assert (
        artifact.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest() == usdc_source_sha256()
    ), "x402_mcp/settlement/contracts/USDC.json is stale: run `npm ci && node compile.mjs` in tools/"
    assert "0.8.37" in artifact.compiler
    assert artifact.evm_version == "cancun"
    assert artifact.bytecode.startswith("0x")
    assert len(artifact.bytecode) > 1000


# --------------------------------------------------------------------------- helpers


class Signer:
    """Signs EIP-3009 messages for one chain's token."""

    def __init__(self, chain: TokenChain) -> None:
        self.chain = chain
        self.domain = {
            "name": chain.asset.name,
            "version": chain.asset.version,
            "chainId": chain.network_info.chain_id,
            "verifyingContract": chain.usdc,
        }

    def sign(
        self, account: LocalAccount, primary: str, fields: list[dict[str, str]], message: dict[str, Any]
    ) -> bytes:
        full = {
            "types": {"EIP712Domain": AUTHORIZATION_TYPES["EIP712Domain"], primary: fields},
            "primaryType": primary,
            "domain": self.domain,
            "message": message,
        }
        return bytes(account.sign_message(encode_typed_data(full_message=full)).signature)


def _authorization(
    payer: str, payee: str, value: int = 1_000, *, after: int = 0, before: int | None = None
) -> dict[str, Any]:
    return {
        "from": payer,
        "to": payee,
        "value": value,
        "validAfter": after,
        "validBefore": before if before is not None else int(time.time()) + 3600,
        "nonce": bytes.fromhex(new_nonce()[2:]),
    }


def _vrs(signature: bytes) -> tuple[int, bytes, bytes]:
    return signature[64], signature[:32], signature[32:64]


def _args(auth: dict[str, Any]) -> list[Any]:
    return [auth["from"], auth["to"], auth["value"], auth["validAfter"], auth["validBefore"], auth["nonce"]]


def _node_account(chain: TokenChain, index: int) -> str:
    """One of the node's unlocked, funded accounts (both eth-tester and anvil have ten)."""
    return str(list(chain.w3.eth.accounts)[index])


def _fn(chain: TokenChain, signature: str, *args: Any) -> Any:
    return chain.token.contract.get_function_by_signature(signature)(*args)


def _send(chain: TokenChain, call: Any, sender: str) -> Any:
    with chain.lock:
        tx_hash = call.transact({"from": sender, "gas": 300_000})
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    assert receipt["status"] == 1
    return receipt


def _revert(chain: TokenChain, call: Any, sender: str) -> str:
    with chain.lock, pytest.raises(REVERTS) as raised:
        call.call({"from": sender, "gas": 300_000})
    message = revert_message(raised.value)
    assert message is not None
    return message


@pytest.fixture
def signer(chain: TokenChain) -> Signer:
    return Signer(chain)


@pytest.fixture
def payer(chain: TokenChain) -> LocalAccount:
    return chain.new_account("1")


@pytest.fixture
def relayer(chain: TokenChain) -> str:
    return _node_account(chain, 3)


# --------------------------------------------------------------------------- ERC-20


def test_the_token_describes_itself(chain: TokenChain) -> None:
    functions = chain.token.contract.functions
    assert functions.owner().call() == _node_account(chain, 0)
    assert functions.decimals().call() == 6
    assert functions.name().call() == chain.asset.name
    minted_before = functions.totalSupply().call()
    chain.new_account("2")
    assert functions.totalSupply().call() == minted_before + 2_000_000


def test_only_the_owner_mints(chain: TokenChain, relayer: str) -> None:
    call = chain.token.contract.functions.mint(relayer, 1)
    assert _revert(chain, call, relayer) == "Ownable: caller is not the owner"
    assert _revert(chain, chain.token.contract.functions.mint(relayer, 0), chain.token.owner) == (
        "FiatToken: mint amount not greater than 0"
    )


def test_erc20_transfers_and_allowances(chain: TokenChain) -> None:
    holder, spender, receiver = _node_account(chain, 2), _node_account(chain, 3), Account.create().address
    chain.mint(holder, "1")
    functions = chain.token.contract.functions

    assert (
        _revert(chain, functions.transfer(receiver, 1_000_001), holder)
        == "ERC20: transfer amount exceeds balance"
    )
    _send(chain, functions.transfer(receiver, 400_000), holder)
    assert _revert(chain, functions.transferFrom(holder, receiver, 1), spender) == (
        "ERC20: transfer amount exceeds allowance"
    )
    _send(chain, functions.approve(spender, 100_000), holder)
    _send(chain, functions.transferFrom(holder, receiver, 60_000), spender)

    assert chain.balance_of(receiver) == 460_000
    assert chain.balance_of(holder) == 540_000
    assert functions.allowance(holder, spender).call() == 40_000


# --------------------------------------------------------------------------- transferWithAuthorization


@pytest.mark.parametrize("form", ["v,r,s", "bytes"])
def test_transfer_with_authorization_moves_funds_once_and_logs_it(
    chain: TokenChain, signer: Signer, payer: LocalAccount, relayer: str, form: str
) -> None:
    payee = Account.create().address
    auth = _authorization(payer.address, payee, 250_000)
    signature = signer.sign(payer, "TransferWithAuthorization", _AUTH_FIELDS, auth)
    call = (
        _fn(chain, TWA_VRS, *_args(auth), *_vrs(signature))
        if form == "v,r,s"
        else _fn(chain, TWA_BYTES, *_args(auth), signature)
    )

    receipt = _send(chain, call, relayer)

    events = chain.token.contract.events
    used = events.AuthorizationUsed().process_receipt(receipt, errors=DISCARD)
    transfers = events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.authorizer, e.args.nonce) for e in used] == [(payer.address, auth["nonce"])]
    assert [(e.args["from"], e.args.to, e.args.value) for e in transfers] == [(payer.address, payee, 250_000)]
    assert chain.balance_of(payee) == 250_000
    assert chain.token.contract.functions.authorizationState(payer.address, auth["nonce"]).call()
    assert _revert(chain, call, relayer) == "FiatTokenV2: authorization is used or canceled"


def test_transfer_with_authorization_revert_strings(
    chain: TokenChain, signer: Signer, payer: LocalAccount, relayer: str
) -> None:
    payee = Account.create().address
    now = int(time.time())

    def attempt(auth: dict[str, Any], signature: bytes | None = None) -> str:
        signature = signature or signer.sign(payer, "TransferWithAuthorization", _AUTH_FIELDS, auth)
        return _revert(chain, _fn(chain, TWA_BYTES, *_args(auth), signature), relayer)

    good = _authorization(payer.address, payee)
    good_signature = signer.sign(payer, "TransferWithAuthorization", _AUTH_FIELDS, good)
    r, s = good_signature[:32], int.from_bytes(good_signature[32:64], "big")
    high_s = r + (2 * _HALF_ORDER + 1 - s).to_bytes(32, "big") + bytes([55 - good_signature[64]])

    assert attempt(_authorization(payer.address, payee, after=now + 3600)) == (
        "FiatTokenV2: authorization is not yet valid"
    )
    assert (
        attempt(_authorization(payer.address, payee, before=now - 3600))
        == "FiatTokenV2: authorization is expired"
    )
    assert (
        attempt(_authorization(payer.address, payee, 2_000_000)) == "ERC20: transfer amount exceeds balance"
    )
    assert attempt(good, signer.sign(Account.create(), "TransferWithAuthorization", _AUTH_FIELDS, good)) == (
        "FiatTokenV2: invalid signature"
    )
    assert attempt(good, high_s) == "ECRecover: invalid signature 's' value"
    assert attempt(good, good_signature[:64] + bytes([29])) == "ECRecover: invalid signature 'v' value"
    assert attempt(good, good_signature[:64]) == "ECRecover: invalid signature length"
    assert chain.balance_of(payee) == 0


def test_a_contract_signer_is_asked_through_eip1271(chain: TokenChain, signer: Signer, relayer: str) -> None:
    payee = Account.create().address
    accepting, refusing = (
        deploy_eip1271_wallet(chain, accepts=True),
        deploy_eip1271_wallet(chain, accepts=False),
    )
    chain.mint(accepting, "1")
    chain.mint(refusing, "1")

    refused = _authorization(refusing, payee)
    assert _revert(chain, _fn(chain, TWA_BYTES, *_args(refused), b"\x01" * 80), relayer) == (
        "FiatTokenV2: invalid signature"
    )
    accepted = _authorization(accepting, payee, 300_000)
    _send(chain, _fn(chain, TWA_BYTES, *_args(accepted), b"\x01" * 80), relayer)
    assert chain.balance_of(payee) == 300_000


# --------------------------------------------------------------------------- receive and cancel


def test_receive_with_authorization_only_for_the_payee(
    chain: TokenChain, signer: Signer, payer: LocalAccount, relayer: str
) -> None:
    payee = _node_account(chain, 4)  # unlocked on the node, so it can send the call itself
    auth = _authorization(payer.address, payee, 120_000)
    fields = AUTHORIZATION_TYPES["TransferWithAuthorization"]
    call = _fn(
        chain, RWA_VRS, *_args(auth), *_vrs(signer.sign(payer, "ReceiveWithAuthorization", fields, auth))
    )

    assert _revert(chain, call, relayer) == "FiatTokenV2: caller must be the payee"
    _send(chain, call, payee)
    assert chain.balance_of(payee) == 120_000


def test_a_canceled_authorization_can_no_longer_be_used(
    chain: TokenChain, signer: Signer, payer: LocalAccount, relayer: str
) -> None:
    payee = Account.create().address
    auth = _authorization(payer.address, payee)
    cancel_fields = [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}]
    cancel_signature = signer.sign(
        payer, "CancelAuthorization", cancel_fields, {"authorizer": payer.address, "nonce": auth["nonce"]}
    )
    cancel = _fn(chain, CANCEL_VRS, payer.address, auth["nonce"], *_vrs(cancel_signature))

    receipt = _send(chain, cancel, relayer)
    canceled = chain.token.contract.events.AuthorizationCanceled().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.authorizer, e.args.nonce) for e in canceled] == [(payer.address, auth["nonce"])]
    assert _revert(chain, cancel, relayer) == "FiatTokenV2: authorization is used or canceled"
    transfer_signature = signer.sign(payer, "TransferWithAuthorization", _AUTH_FIELDS, auth)
    transfer = _fn(chain, TWA_VRS, *_args(auth), *_vrs(transfer_signature))
    assert _revert(chain, transfer, relayer) == "FiatTokenV2: authorization is used or canceled"
    assert chain.balance_of(payer.address) == 1_000_000
