"""A Solana JSON-RPC 2.0 node over a `LocalSolana` (POST /), for the official x402 SVM code.

It answers what the official client and facilitator call, and nothing else:
`getAccountInfo`, `getLatestBlockhash`, `simulateTransaction`, `sendTransaction` and
`getSignatureStatuses`. Transactions really execute in LiteSVM. Answers are built with
solders' own RPC response classes (what solana-py parses them back into); any other
method is `-32601 Method not found`.

Where LiteSVM differs from a node: a sent transaction executes at once, so a failing
`sendTransaction` is answered with the failure (`-32002`, the error and logs in `data`)
even with `skipPreflight`; a transaction that failed in execution still paid its fee
and shows in `getSignatureStatuses` with its `err`, as it would on chain. Every landed
transaction is reported `finalized` at the current slot.

All handlers are async, so LiteSVM is only ever touched from the event loop's thread.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from solders.pubkey import Pubkey
from solders.rpc.errors import (
    InvalidParamsMessage,
    MethodNotFoundMessage,
    SendTransactionPreflightFailureMessage,
)
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetLatestBlockhashResp,
    GetSignatureStatusesResp,
    RpcBlockhash,
    RpcResponseContext,
    RpcSimulateTransactionResult,
    SendTransactionResp,
    SimulateTransactionResp,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import TransactionConfirmationStatus, TransactionStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .localsvm import LocalSolana

# A blockhash stays valid for 150 blocks on Solana; LiteSVM has no blocks, so this is nominal.
BLOCKHASH_VALIDITY = 150

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SEND_TRANSACTION_FAILED = -32002  # Solana's "Transaction simulation failed" / preflight failure


class RpcError(Exception):
    def __init__(self, code: int, error: Any) -> None:
        """`error` is a solders error message object (its JSON is `message` plus maybe `data`)."""
        super().__init__(code, error)
        self.code = code
        self.error = error

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, **json.loads(self.error.to_json())}


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, InvalidParamsMessage(message))


def _result(response: Any) -> Any:
    """The `result` member of a solders RPC response's JSON (its own envelope has id 0)."""
    return json.loads(response.to_json())["result"]


def solana_rpc_app(solana: LocalSolana) -> Starlette:
    svm = solana.litesvm

    def context() -> RpcResponseContext:
        return RpcResponseContext(svm.get_clock().slot)

    def transaction(params: list[Any], config: dict[str, Any]) -> VersionedTransaction:
        if config.get("encoding", "base58") != "base64":
            raise _invalid("only base64-encoded transactions are supported")
        try:
            return VersionedTransaction.from_bytes(base64.b64decode(params[0], validate=True))
        except (binascii.Error, ValueError, TypeError, IndexError) as exc:
            raise _invalid(f"failed to deserialize VersionedTransaction: {exc}") from None

    def get_account_info(params: list[Any], config: dict[str, Any]) -> Any:
        if config.get("encoding", "base64") != "base64":
            raise _invalid("only base64 account encoding is supported")
        if config.get("dataSlice"):
            raise _invalid("dataSlice is not supported")
        account = svm.get_account(_pubkey(params))
        return _result(GetAccountInfoResp(account, context()))

    def get_latest_blockhash(params: list[Any], config: dict[str, Any]) -> Any:
        slot = svm.get_clock().slot
        blockhash = RpcBlockhash(svm.latest_blockhash(), slot + BLOCKHASH_VALIDITY)
        return _result(GetLatestBlockhashResp(blockhash, context()))

    def simulate_transaction(params: list[Any], config: dict[str, Any]) -> Any:
        tx = transaction(params, config)
        if config.get("replaceRecentBlockhash") or config.get("accounts"):
            raise _invalid("replaceRecentBlockhash and accounts are not supported")
        sig_verify = bool(config.get("sigVerify", False))
        svm.with_sigverify(sig_verify)
        try:
            outcome = svm.simulate_transaction(tx)
        finally:
            svm.with_sigverify(True)
        meta = outcome.meta()
        err = outcome.err() if isinstance(outcome, FailedTransactionMetadata) else None
        simulated = RpcSimulateTransactionResult(
            err=err, logs=meta.logs(), units_consumed=meta.compute_units_consumed()
        )
        return _result(SimulateTransactionResp(simulated, context()))

    def send_transaction(params: list[Any], config: dict[str, Any]) -> Any:
        tx = transaction(params, config)
        if not config.get("skipPreflight", False):
            preflight = svm.simulate_transaction(tx)
            if isinstance(preflight, FailedTransactionMetadata):
                raise _send_failed("Transaction simulation failed", preflight)
        outcome = svm.send_transaction(tx)
        if isinstance(outcome, FailedTransactionMetadata):
            raise _send_failed("Transaction failed", outcome)
        return _result(SendTransactionResp(outcome.signature()))

    def get_signature_statuses(params: list[Any], config: dict[str, Any]) -> Any:
        if not params or not isinstance(params[0], list):
            raise _invalid("expected a list of signatures")
        slot = svm.get_clock().slot
        statuses: list[TransactionStatus | None] = []
        for text in params[0]:
            try:
                signature = Signature.from_string(text)
            except (ValueError, TypeError):
                raise _invalid(f"invalid signature: {text!r}") from None
            found = svm.get_transaction(signature)
            if found is None:
                statuses.append(None)
                continue
            err = found.err() if isinstance(found, FailedTransactionMetadata) else None
            statuses.append(TransactionStatus(slot, None, err, err, TransactionConfirmationStatus.Finalized))
        return _result(GetSignatureStatusesResp(statuses, context()))

    methods: dict[str, Callable[[list[Any], dict[str, Any]], Any]] = {
        "getAccountInfo": get_account_info,
        "getLatestBlockhash": get_latest_blockhash,
        "simulateTransaction": simulate_transaction,
        "sendTransaction": send_transaction,
        "getSignatureStatuses": get_signature_statuses,
    }

    def answer(request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
            return _error(None, INVALID_REQUEST, "Invalid request")
        ident = request.get("id")
        handler = methods.get(str(request.get("method")))
        if handler is None:
            return _error(ident, METHOD_NOT_FOUND, MethodNotFoundMessage("Method not found"))
        params = request.get("params") or []
        if not isinstance(params, list):
            return _error(ident, INVALID_PARAMS, InvalidParamsMessage("params must be an array"))
        # The config object, when given, follows the positional arguments.
        config = params[-1] if params and isinstance(params[-1], dict) else {}
        try:
            return {"jsonrpc": "2.0", "result": handler(params, config), "id": ident}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.as_json(), "id": ident}

    async def endpoint(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(_error(None, PARSE_ERROR, "Parse error"))
        return JSONResponse(answer(body))

    return Starlette(routes=[Route("/", endpoint, methods=["POST"])])


def _pubkey(params: list[Any]) -> Pubkey:
    try:
        return Pubkey.from_string(params[0])
    except (ValueError, TypeError, IndexError):
        raise _invalid("Invalid param: expected a base58 public key") from None


def _send_failed(what: str, failed: FailedTransactionMetadata) -> RpcError:
    meta = failed.meta()
    data = RpcSimulateTransactionResult(
        err=failed.err(), logs=meta.logs(), units_consumed=meta.compute_units_consumed()
    )
    err = json.loads(data.to_json())["err"]
    return RpcError(SEND_TRANSACTION_FAILED, SendTransactionPreflightFailureMessage(f"{what}: {err}", data))


def _error(ident: Any, code: int, error: Any) -> dict[str, Any]:
    body = {"code": code, "message": error} if isinstance(error, str) else RpcError(code, error).as_json()
    return {"jsonrpc": "2.0", "error": body, "id": ident}
