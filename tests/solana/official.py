"""The official x402 SVM code (client and facilitator, both sync) pointed at a local Solana RPC.

Both use solana-py's sync `Client`, which warns on construction (DeprecationWarning and
FutureWarning: "Client is deprecated") and whose `TxOpts` warns on every send. Under
`filterwarnings = error` those would turn the official code's own RPC calls into
exceptions; `ignore_solana_py_deprecations()` (called by the fixtures, so undone with the
test) silences exactly those two messages.
"""

from __future__ import annotations

import warnings
from typing import Any

from solders.keypair import Keypair
from starlette.applications import Starlette

from ..facilitator.official import facilitator_routes
from .localsvm import SOLANA_DEVNET


def ignore_solana_py_deprecations() -> None:
    """Ignore solana-py's deprecation of its sync `Client` and `TxOpts`, until the test ends.

    Call it inside a test or fixture: pytest restores the warning filters after each test.
    """
    warnings.filterwarnings("ignore", message=r"(Client|TxOpts) is deprecated; use solana\.rpc\.")


def official_svm_facilitator_app(fee_payer: Keypair, rpc_url: str) -> Starlette:
    """The official `x402FacilitatorSync`, exact SVM scheme on devnet (the library adds the v1 names)."""
    from x402 import x402FacilitatorSync
    from x402.mechanisms.svm import FacilitatorKeypairSigner
    from x402.mechanisms.svm.exact import register_exact_svm_facilitator

    facilitator = register_exact_svm_facilitator(
        x402FacilitatorSync(), FacilitatorKeypairSigner(fee_payer, rpc_url=rpc_url), networks=SOLANA_DEVNET
    )
    return facilitator_routes(facilitator)


def official_svm_payment(payment_required: dict[str, Any], payer: Keypair, rpc_url: str) -> dict[str, Any]:
    """The official sync client's v2 payment payload (camelCase, JSON-ready) for a PaymentRequired.

    Only the exact SVM scheme is registered, so it picks the Solana entry of `accepts` even
    when EVM entries come first. Sync and calling the RPC over HTTP: from async code run it
    in a worker thread (`anyio.to_thread.run_sync`).
    """
    from x402 import x402ClientSync
    from x402.mechanisms.svm import KeypairSigner
    from x402.mechanisms.svm.exact import register_exact_svm_client
    from x402.schemas import PaymentRequired

    client = register_exact_svm_client(
        x402ClientSync(), KeypairSigner(payer), networks=SOLANA_DEVNET, rpc_url=rpc_url
    )
    payload = client.create_payment_payload(PaymentRequired.model_validate(payment_required))
    dumped: dict[str, Any] = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped
