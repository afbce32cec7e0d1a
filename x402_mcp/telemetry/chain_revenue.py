"""What the chain says was received, against what the ledger says was settled (`ledger report --rpc-url`).

For the report's period, on the EVM network the RPC serves, for each payee and asset
the ledger's settlements name: the token's `Transfer` logs to the payee in the blocks
of the period, matched to the ledger's settlements by transaction. A settlement whose
transfer is not in those blocks (mined just across the period's edge) is looked up by
its own receipt; a transfer no settlement in the whole ledger names is listed as
unrecorded (money that arrived without a paid request: a direct transfer, or a payment
still awaiting reconciliation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from ..errors import ConfigurationError
from ..settlement.contracts.eip3009 import TRANSFER_TOPIC
from .revenue import Payment

LOG_CHUNK_BLOCKS = 5_000
"""Blocks per `eth_getLogs` call (public RPCs cap the range)."""


@dataclass
class ChainCheck:
    """One payee and asset on the RPC's network: ledger and chain, in atomic units."""

    network: str
    payee: str
    asset: str
    from_block: int
    to_block: int
    ledger_total: int = 0
    chain_total: int = 0
    unconfirmed: list[str] = field(default_factory=list)
    """Transactions of ledger settlements with no matching transfer to the payee on chain."""
    unrecorded: list[tuple[str, int]] = field(default_factory=list)
    """(transaction, amount) of transfers to the payee that no ledger settlement names."""
    transfers: int = 0
    """Transactions in the period's blocks that paid the payee."""

    @property
    def difference(self) -> int:
        """Chain minus ledger: zero when the two agree."""
        return self.chain_total - self.ledger_total


def check_chain(
    rpc_url: str,
    payments: Iterable[Payment],
    recorded_transactions: Iterable[str],
    *,
    since: float | None,
    until: float | None,
) -> list[ChainCheck]:
    """Compare `payments` (the period's, from the ledger) with the chain at `rpc_url`.

    `recorded_transactions` are every settlement's transaction in the ledger (any period).

    Raises:
        ConfigurationError: the RPC cannot be reached or answers nonsense.
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        network = f"eip155:{int(w3.eth.chain_id)}"
        latest = int(w3.eth.block_number)
    except Exception as exc:  # web3 raises many kinds for a bad URL or node
        raise ConfigurationError(
            f"the RPC at --rpc-url could not be asked for its chain ({type(exc).__name__})"
        ) from None
    from_block = 0 if since is None else _first_block_at(w3, since, latest)
    to_block = latest if until is None else _first_block_at(w3, until, latest) - 1
    recorded = {tx.lower() for tx in recorded_transactions}
    checks: dict[tuple[str, str], ChainCheck] = {}
    ours = [payment for payment in payments if payment.network == network and payment.payee]
    for payment in ours:
        key = (payment.payee.lower(), payment.asset.lower())
        fresh = ChainCheck(network, payment.payee, payment.asset, from_block, to_block)
        check = checks.setdefault(key, fresh)
        check.ledger_total += payment.amount
    for (payee, asset), check in checks.items():
        received = _transfers_to(w3, asset, payee, from_block, to_block)
        check.chain_total = sum(received.values())
        check.transfers = len(received)
        for payment in ours:
            if (payment.payee.lower(), payment.asset.lower()) != (payee, asset):
                continue
            found = received.get(payment.tx_hash.lower())
            if found is None:  # mined just outside the period's blocks: ask for its receipt
                found = _receipt_transfer(w3, payment.tx_hash, asset, payee)
            if found is None or found < payment.amount:
                check.unconfirmed.append(payment.tx_hash)
        check.unrecorded = sorted((tx, amount) for tx, amount in received.items() if tx not in recorded)
    return sorted(checks.values(), key=lambda check: (check.payee, check.asset))


def _first_block_at(w3: Web3, moment: float, latest: int) -> int:
    """The first block whose timestamp is at or after `moment` (`latest + 1` when none is)."""
    low, high = 0, latest + 1
    while low < high:
        middle = (low + high) // 2
        if int(w3.eth.get_block(middle)["timestamp"]) >= moment:
            high = middle
        else:
            low = middle + 1
    return low


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower()[2:]


def _transfers_to(w3: Web3, asset: str, payee: str, from_block: int, to_block: int) -> dict[str, int]:
    """Amount the payee received of `asset` per transaction, in the blocks given."""
    received: dict[str, int] = {}
    start = from_block
    while start <= to_block:
        end = min(to_block, start + LOG_CHUNK_BLOCKS - 1)
        logs = w3.eth.get_logs(
            {
                "address": Web3.to_checksum_address(asset),
                "fromBlock": start,
                "toBlock": end,
                "topics": ["0x" + TRANSFER_TOPIC.hex(), None, _topic(payee)],
            }
        )
        for log in logs:
            tx = "0x" + bytes(log["transactionHash"]).hex()
            received[tx] = received.get(tx, 0) + int.from_bytes(bytes(log["data"]), "big")
        start = end + 1
    return received


def _receipt_transfer(w3: Web3, tx_hash: str, asset: str, payee: str) -> int | None:
    """What transaction `tx_hash` transferred of `asset` to `payee` (None: no such transaction)."""
    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception:  # not found (or not mined) on this chain
        return None
    return _sum_transfers(receipt["logs"], asset, payee)


def _sum_transfers(logs: Iterable[Mapping[str, Any]], asset: str, payee: str) -> int | None:
    total: int | None = None
    for log in logs:
        topics = [bytes(topic) for topic in log["topics"]]
        if str(log["address"]).lower() != asset.lower() or len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
            continue
        if topics[2] != bytes.fromhex(_topic(payee)[2:]):
            continue
        total = (total or 0) + int.from_bytes(bytes(log["data"]), "big")
    return total
