"""Signing a payment for a challenge, as an x402 client does (no chain access).

The payer is an eth-account `LocalAccount` (an EOA) or any `PaymentSigner`: a
smart account whose SDK signs EIP-712 typed data for it, the way a smart wallet
answers `eth_signTypedData_v4` (an EIP-1271 signature, or an ERC-6492-wrapped one
while the wallet is not deployed). `OwnedSmartAccount` is such a signer for a
wallet with one owner key.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from coincurve import PrivateKey as CurveKey
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from mcp_types import CallToolResult, RequestParamsMeta, TextContent

from ..core.challenge import META_PAYMENT
from ..core.erc6492 import wrap_erc6492
from ..core.evm import authorization_digest, new_authorization, requirement_typed_data, sign_authorization
from ..core.wire import ExactAuthorization, ExactPayload, PaymentPayload, PaymentRequired, PaymentRequirements
from ..errors import MalformedPayment


@runtime_checkable
class PaymentSigner(Protocol):
    """A payer that is not a plain key: it names its address and signs typed data for it."""

    @property
    def address(self) -> str:
        """The paying account: the authorization's `from`."""
        ...

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        """The signature a verifier checks for `address` over the EIP-712 `typed_data`
        (the `eth_signTypedData_v4` message), in whatever shape the account needs."""
        ...


def _as_is(signature: bytes) -> bytes:
    return signature


@dataclass(frozen=True, slots=True)
class OwnedSmartAccount:
    """A smart-contract wallet at `address` for which `owner`'s key signs (a `PaymentSigner`).

    Args:
        owner: the key the wallet accepts signatures from through EIP-1271.
        address: the wallet (deployed, or the address its factory will deploy it at).
        wrap: turns the owner's 65-byte signature into the form the wallet's
            `isValidSignature` expects (as is, by default).
        deployment: (factory, calldata) while the wallet is not deployed: the
            signature is then wrapped for ERC-6492, and the server deploys the wallet
            when it settles (only through a factory it allows).
    """

    owner: LocalAccount
    address: str
    wrap: Callable[[bytes], bytes] = _as_is
    deployment: tuple[str, bytes] | None = None

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        signed = self.owner.sign_message(encode_typed_data(full_message=typed_data))
        signature = self.wrap(bytes(signed.signature))
        if self.deployment is not None:
            factory, calldata = self.deployment
            signature = wrap_erc6492(factory, calldata, signature)
        return signature


# One parsed key per live account (the parse costs about a signature), dropped with the account:
# no key outlives the object the application holds it in.
_SIGNING_KEYS: weakref.WeakKeyDictionary[LocalAccount, CurveKey] = weakref.WeakKeyDictionary()


def _signing_key(account: LocalAccount) -> CurveKey:
    key = _SIGNING_KEYS.get(account)
    if key is None:
        key = _SIGNING_KEYS[account] = CurveKey(bytes(account.key))
    return key


def sign_digest(account: LocalAccount, digest: bytes) -> bytes:
    """`account`'s 65-byte signature (v = 27/28) over `digest`, byte for byte what
    `account.sign_message` gives for a message hashing to it (deterministic RFC 6979, low s)."""
    # coincurve is the backend eth-keys (so eth-account) signs with: RFC 6979 nonces, low s.
    raw = _signing_key(account).sign_recoverable(digest, hasher=None)
    return raw[:64] + bytes((raw[64] + 27,))


def _sign_eoa(
    account: LocalAccount, requirements: PaymentRequirements, authorization: ExactAuthorization
) -> ExactPayload:
    try:
        digest = authorization_digest(authorization, requirements)
    except ValueError:  # a domain eth-account cannot encode either: let it say why
        return _sign_typed(account, requirements, authorization)
    return ExactPayload(signature="0x" + sign_digest(account, digest).hex(), authorization=authorization)


def _sign_typed(
    account: LocalAccount, requirements: PaymentRequirements, authorization: ExactAuthorization
) -> ExactPayload:
    return sign_authorization(
        account,
        requirements,
        payer=authorization.from_,
        valid_after=int(authorization.valid_after),
        valid_before=int(authorization.valid_before),
        value=int(authorization.value),
        nonce=authorization.nonce,
    )


def sign_with(
    signer: LocalAccount | PaymentSigner,
    requirements: PaymentRequirements,
    *,
    authorization: ExactAuthorization | None = None,
) -> ExactPayload:
    """An exact-EVM payment for `requirements` from `signer`, a key or a smart account.

    `authorization` is the one to sign (its window and nonce chosen by the caller, as the
    paying client does to cap the validity); by default one is filled for `requirements`.
    """
    if authorization is None:
        authorization = new_authorization(signer.address, requirements)
    if type(signer) is LocalAccount:
        # Only the plain class: a subclass may sign differently (a hardware key, a remote signer).
        return _sign_eoa(signer, requirements, authorization)
    if isinstance(signer, LocalAccount):
        return _sign_typed(signer, requirements, authorization)
    signature = signer.sign_typed_data(requirement_typed_data(authorization, requirements))
    return ExactPayload(signature="0x" + signature.hex(), authorization=authorization)


def read_challenge(data: Any) -> PaymentRequired:
    """A v2 `PaymentRequired` from a challenge: the tool error itself (its `structuredContent`,
    else the JSON of `content[0]`, which is all a tool with an `outputSchema` sends), or that
    object or JSON text."""
    if isinstance(data, CallToolResult):
        first = data.content[0] if data.content else None
        data = data.structured_content or (first.text if isinstance(first, TextContent) else None)
    try:
        return (
            PaymentRequired.model_validate_json(data)
            if isinstance(data, str)
            else PaymentRequired.model_validate(data)
        )
    except ValueError as exc:
        raise MalformedPayment(f"not an x402 v2 PaymentRequired: {exc}") from None


def sign_payment(
    account: LocalAccount | PaymentSigner,
    required: PaymentRequired,
    requirements: PaymentRequirements | None = None,
    *,
    authorization: ExactAuthorization | None = None,
) -> PaymentPayload:
    """Sign `requirements` (default: the first exact EVM entry of `required.accepts`) as `account`
    (`authorization`: as for `sign_with`)."""
    chosen = requirements or next(
        (
            option
            for option in required.accepts
            if option.scheme == "exact" and option.network.startswith("eip155:")
        ),
        None,
    )
    if chosen is None:
        raise MalformedPayment("the challenge offers no exact EVM payment option")
    return PaymentPayload(
        resource=required.resource,
        accepted=chosen,
        payload=sign_with(account, chosen, authorization=authorization),
    )


def payment_meta(payment: PaymentPayload) -> RequestParamsMeta:
    """The `_meta` of a paid retry: `{"x402/payment": <PaymentPayload as JSON>}`."""
    return cast(RequestParamsMeta, {META_PAYMENT: payment.dump()})
