"""What a paid call answers when it does not simply return the tool's result.

The texts a caller reads after a crash, a withheld output or a failed run, and
the small builders of those tool errors. The flow (`x402_mcp.core.flow`) decides
which answer a call gets; this module only words it.
"""

from __future__ import annotations

from mcp_types import CallToolResult, TextContent

from ..core.challenge import failure_result
from ..core.text import shown
from ..errors import LedgerError, SettlementError

CRASH_MESSAGE = (
    "The payment could not be processed because the {part} failed. The tool did not run. "
    "If money moved, the payment is recorded and will be honoured (payment request {request_id})."
)
RAN_BUT_UNCONFIRMED = (
    "The tool ran, but its output is withheld until the payment is confirmed: the {part} failed "
    "while settling it. Your signed payment is recorded with payment request {request_id} and is "
    "reconciled from the chain within minutes. If money moved, the request becomes paid: then call "
    '{tool} again with payment_request_id="{request_id}" (or the same payment) and it runs for you '
    "without a second charge. If no money moved, nothing was charged and the request can be paid again."
)
RAN_BUT_UNRECORDED = (
    "The tool ran, but its output is withheld: the {part} failed while recording the run. "
    "The payment stays with payment request {request_id} and is not charged again: call {tool} "
    'again with payment_request_id="{request_id}" in a few minutes and it runs for you.'
)
FAILED_BUT_PAID = (
    "{tool} failed after its payment settled, so the payment is kept for it: call {tool} again "
    'with payment_request_id="{request_id}" and it runs for you without a second charge.'
)
FAILED_UNCONFIRMED = (
    "{tool} failed, and the {part} failed while settling its payment, which was sent while the "
    "tool ran. Your signed payment is recorded with payment request {request_id} and is reconciled "
    "from the chain within minutes. If money moved, the request becomes paid: then call {tool} "
    'again with payment_request_id="{request_id}" and it runs for you without a second charge. '
    "If no money moved, nothing was charged and the request can be paid again."
)
GET_A_PRICE = (
    "To get a price, call {tool} again without a payment "
    '(no _meta["x402/payment"] and no payment_request_id).'
)
REFUSAL_TEXT_LIMIT = 400
"""Characters of a refusal's reason echoed to the caller and kept in the audit line."""


def failed_part(crash: SettlementError | LedgerError) -> str:
    """Which backend a crash came from, as the caller is told."""
    return "settlement backend" if isinstance(crash, SettlementError) else "payment ledger"


def crash_result(
    crash: SettlementError | LedgerError, *, ran: bool, tool: str, request_id: str | None
) -> CallToolResult:
    """The tool error for a backend crash: before the run (nothing ran) or after it (output withheld)."""
    message = RAN_BUT_UNRECORDED if ran else CRASH_MESSAGE
    return failure_result(message.format(part=failed_part(crash), request_id=request_id or "none", tool=tool))


def raised(failure: BaseException, tool_error: tuple[type[BaseException], ...]) -> CallToolResult:
    """A tool's exception as the error result its framework would answer.

    An instance of the framework's tool error type (`tool_error`, told by its door)
    carries words meant for the caller; of any other exception only its type is
    said, as a masking server would.
    """
    if tool_error and isinstance(failure, tool_error):
        return failure_result(shown(str(failure), REFUSAL_TEXT_LIMIT))
    return failure_result(f"The tool raised {type(failure).__name__}.")


def with_note(result: object, note: str) -> CallToolResult:
    """A failed tool's error result, with `note` (what became of the payment) appended."""
    if not isinstance(result, CallToolResult):
        return failure_result(note)
    return result.model_copy(update={"content": [*result.content, TextContent(type="text", text=note)]})
