"""The settlement protocol every backend implements: verify, settle, supported."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..wire import AnyPaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse


@runtime_checkable
class Settlement(Protocol):
    """Checks and executes exact-EVM payments.

    `verify` and `settle` take *our* requirements, never the client's echo.
    A payment the backend refuses is a normal answer (`is_valid=False`,
    `success=False` with a reason code); only a failure of the backend itself
    (RPC down, timeout, unexpected answer) raises `SettlementError`.
    """

    async def verify(
        self, payload: AnyPaymentPayload, requirements: PaymentRequirements
    ) -> VerifyResponse: ...

    async def settle(
        self, payload: AnyPaymentPayload, requirements: PaymentRequirements
    ) -> SettleResponse: ...

    async def supported(self) -> SupportedResponse: ...
