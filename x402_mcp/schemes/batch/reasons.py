"""The batch-settlement reason codes we send and read (the spec's `invalid_batch_settlement_evm_*`).

They are wire contract: other SDKs branch on them, so each is spelled exactly as the spec
and the official SDKs spell it.
"""

from __future__ import annotations

from typing import Final

_PREFIX: Final = "invalid_batch_settlement_evm_"

INVALID_SCHEME: Final = _PREFIX + "scheme"
NETWORK_MISMATCH: Final = _PREFIX + "network_mismatch"
MISSING_EIP712_DOMAIN: Final = _PREFIX + "missing_eip712_domain"
INVALID_PAYLOAD_TYPE: Final = _PREFIX + "payload_type"
DEPOSIT_PAYLOAD: Final = _PREFIX + "deposit_payload"
VOUCHER_PAYLOAD: Final = _PREFIX + "voucher_payload"
REFUND_PAYLOAD: Final = _PREFIX + "refund_payload"

INVALID_CHANNEL_ID: Final = _PREFIX + "channel_id_invalid"
CHANNEL_ID_MISMATCH: Final = _PREFIX + "channel_id_mismatch"
CHANNEL_NOT_FOUND: Final = _PREFIX + "channel_not_found"
RECEIVER_MISMATCH: Final = _PREFIX + "receiver_mismatch"
RECEIVER_AUTHORIZER_MISMATCH: Final = _PREFIX + "receiver_authorizer_mismatch"
TOKEN_MISMATCH: Final = _PREFIX + "token_mismatch"
WITHDRAW_DELAY_MISMATCH: Final = _PREFIX + "withdraw_delay_mismatch"
WITHDRAW_DELAY_OUT_OF_RANGE: Final = _PREFIX + "withdraw_delay_out_of_range"

INVALID_VOUCHER_SIGNATURE: Final = _PREFIX + "voucher_signature"
CUMULATIVE_EXCEEDS_BALANCE: Final = _PREFIX + "cumulative_exceeds_balance"
CUMULATIVE_BELOW_CLAIMED: Final = _PREFIX + "cumulative_below_claimed"
CUMULATIVE_AMOUNT_MISMATCH: Final = _PREFIX + "cumulative_amount_mismatch"
"""The corrective one: the answer carries `channelState` and `voucherState` to resync from."""
DEPOSIT_BELOW_MIN_DEPOSIT: Final = _PREFIX + "deposit_below_min_deposit"
VALID_AFTER_IN_FUTURE: Final = _PREFIX + "payload_authorization_valid_after"
VALID_BEFORE_EXPIRED: Final = _PREFIX + "payload_authorization_valid_before"
INVALID_RECEIVE_AUTHORIZATION_SIGNATURE: Final = _PREFIX + "receive_authorization_signature"
ERC3009_AUTHORIZATION_REQUIRED: Final = _PREFIX + "erc3009_authorization_required"
PERMIT2_AUTHORIZATION_REQUIRED: Final = _PREFIX + "permit2_authorization_required"
PERMIT2_INVALID_SPENDER: Final = _PREFIX + "permit2_invalid_spender"
PERMIT2_AMOUNT_MISMATCH: Final = _PREFIX + "permit2_amount_mismatch"
PERMIT2_DEADLINE_EXPIRED: Final = _PREFIX + "permit2_deadline_expired"

REFUND_AMOUNT_INVALID: Final = _PREFIX + "refund_amount_invalid"
REFUND_NO_BALANCE: Final = _PREFIX + "refund_no_balance"

CHANNEL_BUSY: Final = _PREFIX + "channel_busy"
"""Another call holds the channel: retry shortly (the ledger's per-channel serialisation)."""
CHARGE_EXCEEDS_SIGNED_CUMULATIVE: Final = _PREFIX + "charge_exceeds_signed_cumulative"
MISSING_CHANNEL: Final = _PREFIX + "missing_channel"
