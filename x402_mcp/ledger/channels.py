"""Batch-settlement channels in the ledger: each channel with its latest voucher, its charges,
and the claims and sweeps that collect them, written once for SQLite and PostgreSQL.

A channel is serialised: every change that depends on what it holds reads it first under a
lock held to the end of the transaction (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
`SELECT … FOR UPDATE`), decides with the scheme's pure rules (`rules.reserve`,
`rules.charge`) and writes. So of two vouchers checked at the same cumulative base and
racing to be charged, from one process or several, one is charged and the other meets the
charge the first made and gets `ChannelConflict` with the corrective reason, never a second
charge. The voucher and its charge are written in one transaction: once `record_charge`
returns, the voucher that pays for the call survives a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal, Unpack

from ..errors import ChannelConflict, LedgerError
from ..schemes.batch import rules
from ..schemes.batch.records import ChainSnapshot, ChannelRecord, Charge
from ..schemes.batch.wire import ChannelConfig, Voucher
from ._dialect import Dialect, Rows, Script, Statement
from ._scripts import LedgerScripts, single_statement
from ._sql import CHANNEL_COLUMNS, ChannelQueries
from .base import Owner

CollectionKind = Literal["claim", "sweep"]


def channel_from_row(row: Sequence[Any]) -> ChannelRecord:
    """A `ChannelRecord` from a row selected as `CHANNEL_COLUMNS` (amounts as text, int or Decimal)."""
    values = dict(zip(CHANNEL_COLUMNS, row, strict=True))
    chain = ChainSnapshot(
        balance=int(values["balance"]),
        total_claimed=int(values["total_claimed"]),
        withdraw_requested_at=int(values["withdraw_requested_at"]),
        refund_nonce=int(values["refund_nonce"]),
    )
    return ChannelRecord(
        channel_id=values["channel_id"],
        network=values["network"],
        config=ChannelConfig.model_validate_json(values["config"]),
        chain=chain,
        charged=int(values["charged"]),
        signed_max_claimable=int(values["signed_max_claimable"]),
        signature=values["signature"],
        settled=int(values["settled"]),
        synced_at=values["synced_at"],
        updated_at=values["updated_at"],
        reservation=values["reservation"],
        reserved_until=values["reserved_until"],
    )


def charge_from_row(row: Sequence[Any]) -> Charge:
    channel_id, tool, amount, cumulative, ceiling, signature, at, request_id = row
    return Charge(channel_id, tool, int(amount), int(cumulative), int(ceiling), signature, at, request_id)


def owner_of(record: ChannelRecord) -> Owner:
    """The server a channel belongs to: its receiver, network and token."""
    return Owner(record.receiver, record.network, record.token)


class ChannelLedger(LedgerScripts):
    """The ledger's channel statements (see the module docstring), beside its requests'."""

    def __init__(self, dialect: Dialect, where: str) -> None:
        super().__init__(dialect, where)
        self._c = ChannelQueries(dialect.tables, dialect.param)

    def _channel_values(self, record: ChannelRecord, *, created_at: float) -> list[object]:
        config, chain, amount = record.config, record.chain, self._d.amount
        by_column: dict[str, object] = {
            "channel_id": record.channel_id.lower(),
            "network": record.network,
            "pay_to": config.receiver,
            "asset": config.token,
            "payer": config.payer,
            "payer_authorizer": config.payer_authorizer,
            "receiver_authorizer": config.receiver_authorizer,
            "withdraw_delay": config.withdraw_delay,
            "config": config.to_json(),
            "balance": amount(chain.balance),
            "total_claimed": amount(chain.total_claimed),
            "withdraw_requested_at": chain.withdraw_requested_at,
            "refund_nonce": amount(chain.refund_nonce),
            "charged": amount(record.charged),
            "signed_max_claimable": amount(record.signed_max_claimable),
            "signature": record.signature,
            "settled": amount(record.settled),
            "synced_at": record.synced_at,
            "reservation": record.reservation,
            "reserved_until": record.reserved_until,
            "created_at": created_at,
            "updated_at": record.updated_at or created_at,
        }
        return [by_column[column] for column in CHANNEL_COLUMNS]

    def _select_channels(self, where: str) -> str:
        return self._c.select + where

    def _locked(self, channel_id: str) -> Script[ChannelRecord | None]:
        """The channel as it stands, held until the transaction ends (SQLite's write
        transaction holds everything; PostgreSQL locks the row)."""
        sql = self._select_channels(f"channel_id = {self._d.param}") + self._d.lock_rows
        rows = (yield Statement(sql, [channel_id.lower()])).rows
        return channel_from_row(rows[0]) if rows else None

    def _write_state(self, record: ChannelRecord) -> Statement:
        """The UPDATE that stores what a charge or reservation changes of `record`."""
        amount = self._d.amount
        return Statement(
            self._c.write_state,
            [
                amount(record.charged),
                amount(record.signed_max_claimable),
                record.signature,
                record.reservation,
                record.reserved_until,
                record.updated_at,
                record.channel_id.lower(),
            ],
        )

    async def _rows(self, sql: str, params: Sequence[object], *, long: bool = False) -> Rows:
        statement = partial(single_statement, Statement(sql, params))
        return (await self._execute(statement, write=False, long=long)).rows

    # -- channels ------------------------------------------------------------------------------------

    async def open_channel(self, record: ChannelRecord, *, now: float) -> ChannelRecord:
        """Store a channel a deposit opened, unless the ledger holds it already; the channel as
        stored (an existing one is kept as it is: update its chain state with `sync_channel`)."""
        values = self._channel_values(record, created_at=now)

        def script() -> Script[ChannelRecord]:
            yield Statement(self._c.insert, values)
            stored = yield from self._locked(record.channel_id)
            if stored is None:
                raise LedgerError(f"{self._where}: channel {record.channel_id} vanished as it was stored")
            return stored

        return await self._execute(script, write=True, atomic=True)

    async def channel(self, channel_id: str, *, owner: Owner | None = None) -> ChannelRecord | None:
        """One channel, or None (also when `owner` does not hold it)."""
        params: list[object] = [channel_id.lower()]
        where = f"channel_id = {self._d.param}{self._q.owned(owner, params)}"
        rows = await self._rows(self._select_channels(where), params)
        return channel_from_row(rows[0]) if rows else None

    async def channels(self, *, owner: Owner | None = None, limit: int = 100) -> list[ChannelRecord]:
        """Channels (of `owner`, or all), most recently changed first, at most `limit`."""
        params: list[object] = []
        where = f"1 = 1{self._q.owned(owner, params)}"
        params.append(max(limit, 0))
        sql = f"{self._select_channels(where)} ORDER BY updated_at DESC, channel_id LIMIT {self._d.param}"
        return [channel_from_row(row) for row in await self._rows(sql, params, long=True)]

    async def sync_channel(
        self, channel_id: str, chain: ChainSnapshot, *, now: float
    ) -> ChannelRecord | None:
        """Mirror the contract's state of a channel, as read at `now`; the channel, or None if missing."""
        amount = self._d.amount
        update = Statement(
            self._c.sync,
            [
                amount(chain.balance),
                amount(chain.total_claimed),
                chain.withdraw_requested_at,
                amount(chain.refund_nonce),
                now,
                now,
                channel_id.lower(),
            ],
        )

        def script() -> Script[ChannelRecord | None]:
            yield update
            return (yield from self._locked(channel_id))

        return await self._execute(script, write=True, atomic=True)

    # -- one paid call -------------------------------------------------------------------------------

    async def reserve_channel(
        self, channel_id: str, *, base: int, reservation: str, until: float, now: float
    ) -> ChannelRecord:
        """Hold the channel for one call whose voucher was checked at `base`, until `until`.

        Raises:
            ChannelConflict: the channel is missing, held by another call, or was charged since.
        """

        def script() -> Script[ChannelRecord]:
            current = yield from self._locked(channel_id)
            held = rules.reserve(current, base=base, reservation=reservation, until=until, now=now)
            if isinstance(held, rules.Refuse):
                raise ChannelConflict(channel_id, held.reason, held.message)
            yield self._write_state(held)
            return held

        return await self._execute(script, write=True, atomic=True)

    async def release_channel(self, channel_id: str, reservation: str) -> bool:
        """Let go of a hold (the call failed, so nothing is charged); whether it was still ours."""
        statement = partial(single_statement, Statement(self._c.release, [channel_id.lower(), reservation]))
        return (await self._execute(statement, write=True)).rowcount == 1

    async def record_charge(
        self, channel_id: str, voucher: Voucher, **terms: Unpack[rules.ChargeTerms]
    ) -> tuple[ChannelRecord, Charge]:
        """Charge one successful call under `voucher` (see `rules.charge` for the terms), storing
        the voucher as the channel's latest, in one transaction; the channel after, and the charge.

        Raises:
            ChannelConflict: the channel was charged since (the corrective reason), is held by
                another call, is missing, or `amount` would exceed the voucher's ceiling.
        """

        def script() -> Script[tuple[ChannelRecord, Charge]]:
            current = yield from self._locked(channel_id)
            outcome = rules.charge(current, voucher, **terms)
            if isinstance(outcome, rules.Refuse):
                raise ChannelConflict(channel_id, outcome.reason, outcome.message)
            record, line = outcome
            yield self._write_state(record)
            d = self._d
            yield Statement(
                self._c.insert_charge,
                [
                    record.channel_id.lower(),
                    line.tool,
                    d.amount(line.amount),
                    d.amount(line.cumulative),
                    d.amount(line.max_claimable_amount),
                    line.signature,
                    line.at,
                    line.request_id,
                ],
            )
            return record, line

        return await self._execute(script, write=True, atomic=True)

    async def charges(self, channel_id: str) -> list[Charge]:
        """The charges of one channel, in the order made."""
        return [charge_from_row(row) for row in await self._rows(self._c.charges, [channel_id.lower()])]

    # -- claims and sweeps ---------------------------------------------------------------------------

    async def unclaimed(self, *, owner: Owner, limit: int = 100) -> list[ChannelRecord]:
        """Channels of `owner` charged beyond what was claimed: those whose payer started a
        withdrawal first (their vouchers are lost once it finalises), then the least recent."""
        return await self._owing("charged <> total_claimed", owner, limit, lambda record: record.unclaimed)

    async def unsettled(self, *, owner: Owner, limit: int = 1000) -> list[ChannelRecord]:
        """Channels of `owner` whose claimed total has not all been swept to the receiver."""
        return await self._owing("total_claimed <> settled", owner, limit, lambda record: record.unsettled)

    async def _owing(
        self, differs: str, owner: Owner, limit: int, owed: Callable[[ChannelRecord], int]
    ) -> list[ChannelRecord]:
        # Amounts are decimal text on SQLite: "differs" is exact there, "exceeds" is read here.
        params: list[object] = []
        where = f"{differs}{self._q.owned(owner, params)}"
        params.append(max(limit, 0))
        sql = (
            f"{self._select_channels(where)} ORDER BY (withdraw_requested_at = 0), updated_at, channel_id"
            f" LIMIT {self._d.param}"
        )
        records = [channel_from_row(row) for row in await self._rows(sql, params, long=True)]
        return [record for record in records if owed(record) > 0]

    async def begin_claim(self, claim_id: str, records: Sequence[ChannelRecord], *, now: float) -> int:
        """Record a claim about to be sent: each channel up to its charges, under its latest
        voucher (stored with the claim, so a claim can be sent again after a crash). The
        records must share one owner. Returns the amount it claims beyond what was claimed."""
        entries = [(r, r.signed_max_claimable, r.charged, r.signature) for r in records]
        return await self._begin("claim", claim_id, records, entries, now)

    async def begin_sweep(self, sweep_id: str, *, owner: Owner, now: float) -> int:
        """Record a sweep about to be sent: it settles each of `owner`'s channels up to the total
        claimed now. Returns the amount it moves to the receiver (0: nothing to sweep)."""
        records = await self.unsettled(owner=owner)
        entries = [(r, r.signed_max_claimable, r.chain.total_claimed, None) for r in records]
        return await self._begin("sweep", sweep_id, records, entries, now, owner)

    async def _begin(
        self,
        kind: CollectionKind,
        collection_id: str,
        records: Sequence[ChannelRecord],
        entries: Sequence[tuple[ChannelRecord, int, int, str | None]],
        now: float,
        owner: Owner | None = None,
    ) -> int:
        if kind == "claim" and not records:
            raise LedgerError("a claim needs at least one channel to claim")
        owners = {owner_of(record) for record in records} | ({owner} if owner else set())
        if len(owners) != 1:
            raise LedgerError(f"a {kind} collects the channels of one receiver, network and token")
        (only,) = owners
        d, c = self._d, self._c
        if kind == "claim":
            amount = sum(max(total - r.chain.total_claimed, 0) for r, _, total, _ in entries)
        else:
            amount = sum(max(total - r.settled, 0) for r, _, total, _ in entries)

        def script() -> Script[int]:
            yield Statement(
                c.insert_collection,
                [collection_id, kind, only.network, only.pay_to, only.asset, d.amount(amount), now, now],
                partial(LedgerError, f"{kind} {collection_id} is recorded already"),
            )
            for record, ceiling, total, signature in entries:
                yield Statement(
                    c.insert_entry,
                    [collection_id, record.channel_id.lower(), d.amount(ceiling), d.amount(total), signature],
                )
            return amount

        return await self._execute(script, write=True, atomic=True)

    async def finish_collection(
        self, collection_id: str, *, confirmed: bool, tx_hash: str | None, now: float
    ) -> bool:
        """Record how a claim or sweep ended: confirmed (its channels' claimed or settled totals
        rise to its entries'), or failed (nothing changes). Whether it was still submitted."""
        d, c = self._d, self._c

        def script() -> Script[bool]:
            found = yield Statement(c.submitted_kind + d.lock_rows, [collection_id])
            if not found.rows:
                return False
            kind = str(found.rows[0][0])
            state = "confirmed" if confirmed else "failed"
            yield Statement(c.finish, [state, tx_hash, now, collection_id])
            if not confirmed:
                return True
            column = "total_claimed" if kind == "claim" else "settled"
            entries = yield Statement(c.reached(column) + d.lock_rows, [collection_id])
            for channel_id, reached, before in entries.rows:
                if int(reached) > int(before):  # a total only ever rises, whatever the order of confirmations
                    yield Statement(c.raise_total(column), [d.amount(int(reached)), now, channel_id])
            return True

        return await self._execute(script, write=True, atomic=True)

    async def submitted(self, *, owner: Owner) -> list[tuple[str, CollectionKind, int]]:
        """Claims and sweeps of `owner` sent but not known to have ended (id, kind, amount),
        oldest first: what to reconcile with the chain after a crash."""
        params: list[object] = []
        sql = f"{self._c.submitted}{self._q.owned(owner, params)} ORDER BY created_at, id"
        return [(str(i), kind, int(amount)) for i, kind, amount in await self._rows(sql, params)]

    async def collection_entries(self, collection_id: str) -> list[tuple[str, int, int, str | None]]:
        """A claim's or sweep's entries: (channel id, voucher ceiling, total it reaches, signature)."""
        rows = await self._rows(self._c.entries, [collection_id])
        return [(str(c), int(ceiling), int(total), signature) for c, ceiling, total, signature in rows]


__all__ = ["ChannelLedger", "channel_from_row", "owner_of"]
