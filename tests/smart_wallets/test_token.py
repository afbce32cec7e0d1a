"""Our USDC's `bytes signature` overloads with a real EIP-1271 wallet (SignatureChecker semantics)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.evm import AUTHORIZATION_TYPES, new_nonce

from .wallets import deploy_wallet, wrapped

# anvil reverts as web3 maps it; the embedded chain as eth-tester raises it.
_REVERTED = (ContractLogicError, TransactionFailed)
_FIELDS = AUTHORIZATION_TYPES["TransferWithAuthorization"]
_CANCEL_FIELDS = [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}]


def _signed(
    chain: TokenChain, owner: LocalAccount, primary: str, fields: list[dict[str, str]], message: dict
) -> bytes:  # type: ignore[type-arg]
    typed = {
        "types": {"EIP712Domain": AUTHORIZATION_TYPES["EIP712Domain"], primary: fields},
        "primaryType": primary,
        "domain": {
            "name": chain.asset.name,
            "version": chain.asset.version,
            "chainId": chain.w3.eth.chain_id,
            "verifyingContract": chain.usdc,
        },
        "message": message,
    }
    return wrapped(bytes(owner.sign_message(encode_typed_data(full_message=typed)).signature))


def _authorization(wallet: str, to: str, value: int) -> dict:  # type: ignore[type-arg]
    return {
        "from": wallet,
        "to": to,
        "value": value,
        "validAfter": 0,
        "validBefore": 2**40,
        "nonce": bytes.fromhex(new_nonce()[2:]),
    }


def _transact(chain: TokenChain, call, sender: str) -> None:  # type: ignore[no-untyped-def]
    with chain.lock:
        tx_hash = call.transact({"from": sender, "gas": 500_000})
        assert chain.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)["status"] == 1


def _fn(chain: TokenChain, signature: str):  # type: ignore[no-untyped-def]
    return chain.token.contract.get_function_by_signature(signature)


def test_receive_with_authorization_takes_a_wallets_bytes_signature(chain: TokenChain) -> None:
    owner = Account.create()
    wallet = deploy_wallet(chain, owner.address)
    chain.mint(wallet, "1")
    payee = str(chain.w3.eth.accounts[3])  # unlocked on the node: it must call for itself
    auth = _authorization(wallet, payee, 250_000)
    signature = _signed(chain, owner, "ReceiveWithAuthorization", _FIELDS, auth)
    receive = _fn(chain, "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)")

    _transact(chain, receive(*auth.values(), signature), payee)
    assert chain.balance_of(payee) == 250_000
    with pytest.raises(_REVERTED, match="used or canceled"), chain.lock:
        receive(*auth.values(), signature).call({"from": payee})


def test_cancel_authorization_takes_a_wallets_bytes_signature(chain: TokenChain) -> None:
    owner = Account.create()
    wallet = deploy_wallet(chain, owner.address)
    nonce = bytes.fromhex(new_nonce()[2:])
    cancel = _fn(chain, "cancelAuthorization(address,bytes32,bytes)")
    sender = str(chain.w3.eth.accounts[0])

    stranger = _signed(
        chain, Account.create(), "CancelAuthorization", _CANCEL_FIELDS, {"authorizer": wallet, "nonce": nonce}
    )
    with pytest.raises(_REVERTED, match="invalid signature"), chain.lock:
        cancel(wallet, nonce, stranger).call({"from": sender})
    signature = _signed(
        chain, owner, "CancelAuthorization", _CANCEL_FIELDS, {"authorizer": wallet, "nonce": nonce}
    )
    _transact(chain, cancel(wallet, nonce, signature), sender)
    assert chain.token.authorization_state(wallet, "0x" + nonce.hex())
    assert keccak(text="CancelAuthorization(address authorizer,bytes32 nonce)") == bytes(
        chain.token.contract.functions.CANCEL_AUTHORIZATION_TYPEHASH().call()
    )
