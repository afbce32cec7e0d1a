"""What the SQL ledger asks of a driver: statements to run, and the dialect they are written in.

`SQLLedger` writes each operation once, as a script: a generator that yields
`Statement`s and is sent back each one's `Result`, deciding what to run next
from what came back. A driver runs a script on one of its connections (SQLite
in its write transaction, on the event loop or in a thread; PostgreSQL on a
pooled connection, in a transaction when the operation asks for one) and does
nothing else with SQL. What the two databases spell differently is a field of
`Dialect`, so the statements themselves exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias, TypeVar, cast

from ._sql import Tables

T = TypeVar("T")

Rows: TypeAlias = list[tuple[Any, ...]]


class Statement(NamedTuple):
    """One SQL statement and its parameters; when it breaks a uniqueness constraint, the
    error `duplicate` makes (if any) is raised instead of the driver's own."""

    sql: str
    params: Sequence[object] = ()
    duplicate: Callable[[], Exception] | None = None


class Result(NamedTuple):
    """A statement's rows (none for a write without RETURNING) and how many rows it changed."""

    rows: Rows
    rowcount: int


#: An operation as the driver runs it: yields statements, is sent their results, returns T.
Script: TypeAlias = Generator[Statement, Result, T]


def run_script(script: Script[T], execute: Callable[[Statement], Result]) -> T:
    """Run `script` to its end with a blocking `execute` (the SQLite driver's, on one connection)."""
    try:
        statement = next(script)
        while True:
            statement = script.send(execute(statement))
    except StopIteration as finished:
        return cast(T, finished.value)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells what the ledger's statements need."""

    tables: Tables
    #: The parameter placeholder ("?" or "%s").
    param: str
    #: An amount (int of atomic units) as a parameter: decimal text for SQLite, int for NUMERIC.
    amount: Callable[[int], object]
    #: An amount column's type and constraints; `{column}` stands for its name.
    amount_column: str
    #: The type of the timestamp columns (seconds since the epoch, floating point).
    time_type: str
    #: The audit table's primary key column, numbered by the database in the order written.
    audit_id: str
    #: The claim's guard that the stored `price` covers the price asked; every parameter is the price.
    covers: str
    #: Data-modifying CTEs: a write and its audit line go in one statement (one round trip).
    one_statement_writes: bool
    #: UPDATE and INSERT … RETURNING (SQLite since 3.35): the moved row comes back with the write.
    returning: bool
    #: A parameter whose type the database cannot infer (in a CTE's SELECT list).
    time_param: str
    amount_param: str
    #: Appended to a SELECT whose rows must stay as read until the transaction ends.
    lock_rows: str = ""
    #: A statement (one parameter: the caller, "" for none) that serialises issues per caller;
    #: None where every write transaction is serialised already.
    caller_lock: str | None = None
    #: Run first in the migration's transaction (its lock, the schema).
    migration_prelude: tuple[str, ...] = ()
