"""Blue's and green's copies of PostgreSQL tables agree, through the Postgres provider's PostgresHook.

Connections: the two databases are Airflow connections named in the settings, `blue_connection` and
`green_connection`. The DriverRef's own `connection` is refused: with two databases, a single
unnamed connection would be ambiguous. Set `connect_timeout` in a connection's extra so an
unreachable host fails fast instead of waiting for the OS timeout.

Each check reads afresh (no state between calls: it runs in a trigger):
  1. `lag_query` (if set) on green: one number, seconds behind blue (an interval works too);
     above `max_lag` → waiting, without scanning any table. E.g. for a logical-replication
     subscriber, from pg_stat_subscription; or `SELECT EXTRACT(EPOCH FROM now() - max(updated_at))
     FROM orders`, which is time since green's last write, so it also grows while blue is idle.
  2. every table on blue, then on green (blue first: green has had the longest to catch up): the
     row count and, with `checksum`, an order-independent checksum of the rows.
  3. all equal → ready; a difference → waiting while the lag query says green is behind (lag > 0),
     else failed (diverged). Without a lag query a difference is always failed: nothing says
     rows are still on their way.
  A side that cannot be read (connection refused, missing table, statement timeout, a lag query
  returning nothing) → waiting with the error: transient, and the gate's timeout turns it into a
  failure, so a database that is down never passes.

Cost: the checksum reads every row of every table (full scan, md5 per row), on both sides, at every
check; without it, count(*) still scans (or walks an index). Budget the gate's `interval` for it, and
keep `statement_timeout` (per statement, set for the session) below it. The checksum hashes each row's
text form, so both sides need the same columns in the same order with the same types.
Comparing live tables only settles once writes to blue stop or replication keeps up (lag 0).

Each side is read in one REPEATABLE READ, READ ONLY transaction: all its tables from one snapshot,
and nothing the driver runs (the spec's lag query included) can write.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.slow_injection.drivers.postgres_pair import TableName, blue_and_green_hooks, check_two_databases
from include.slow_injection.ports import Readiness
from include.slow_injection.spec.models import ConnectionId, Duration

_COUNT = "SELECT count(*) FROM {table}"
# Order-independent and constant-memory: the sum of every row's md5, in two 64-bit halves. No sort,
# and no string growing with the table (a string_agg of row hashes hits the 1 GB value limit at
# ~30 M rows); a sum, unlike XOR, also tells one copy of a row from three.
_COUNT_AND_CHECKSUM = (
    "SELECT count(*), concat_ws(':', sum(('x' || left(h, 16))::bit(64)::bigint::numeric),"
    " sum(('x' || right(h, 16))::bit(64)::bigint::numeric))"
    " FROM (SELECT md5(ROW(r.*)::text) AS h FROM {table} AS r) AS hashed"
)


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str | None  # None when checksums are off


class PostgresSync:
    port = "data_sync"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        blue_connection: ConnectionId = Field(description="Airflow connection to blue's database")
        green_connection: ConnectionId = Field(description="Airflow connection to green's database")
        tables: Annotated[list[TableName], Field(min_length=1)] = Field(
            description="tables to compare, bare or schema-qualified (e.g. public.orders), case-sensitive"
        )
        checksum: bool = Field(default=True, description="also compare a checksum of the rows (full scan)")
        lag_query: str | None = Field(
            default=None, min_length=1, description="SQL run on green returning one number: seconds behind blue"
        )
        max_lag: Duration = Field(default=30.0, description="lag above this → waiting")
        statement_timeout: Annotated[Duration, Field(gt=0)] = Field(
            default=30.0, description="longest a single statement may run"
        )

        @model_validator(mode="after")
        def _two_databases(self) -> PostgresSync.Settings:
            check_two_databases(self.blue_connection, self.green_connection, self.tables)
            return self

    def __init__(self, hooks: dict[str, Any], settings: Settings) -> None:
        self.hooks, self.settings = hooks, settings

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> PostgresSync:
        hooks = blue_and_green_hooks(
            "postgres data sync", settings.blue_connection, settings.green_connection, connection_id
        )
        return cls(hooks, settings)

    def describe(self) -> str:
        s = self.settings
        return f"postgres {s.blue_connection} → {s.green_connection} ({len(s.tables)} table(s))"

    def check(self) -> Readiness:
        lag = None
        if self.settings.lag_query:
            try:
                lag = self._green_lag()
            except Exception as err:
                return Readiness("waiting", f"lag query on green: {_error(err)}")
            if lag > self.settings.max_lag:
                return Readiness("waiting", f"lagging: {_seconds(lag)} behind > {_seconds(self.settings.max_lag)}")
        states: dict[str, dict[str, TableState]] = {}
        for side in ("blue", "green"):
            try:
                states[side] = self._table_states(side)
            except Exception as err:
                return Readiness("waiting", f"{side}: {_error(err)}")
        return _verdict(states["blue"], states["green"], lag)

    @contextmanager
    def _session(self, side: str) -> Iterator[tuple[Any, Any]]:
        """A cursor in a fresh read-only snapshot of one side, and the driver's `sql` module."""
        conn = self.hooks[side].get_conn()
        try:
            conn.autocommit = False  # the transaction settings below need a transaction
            with conn.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, false)",
                    (str(round(self.settings.statement_timeout * 1000)),),
                )
                yield cursor, _sql_module(conn)
        finally:
            conn.close()

    def _green_lag(self) -> float:
        with self._session("green") as (cursor, _):
            cursor.execute(self.settings.lag_query)
            row = cursor.fetchone()
        values = _values(row)
        if len(values) != 1 or values[0] is None:
            raise ValueError(f"lag query must return one number, got {values or 'no row'}")
        value = values[0]
        return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)

    def _table_states(self, side: str) -> dict[str, TableState]:
        template = _COUNT_AND_CHECKSUM if self.settings.checksum else _COUNT
        states = {}
        with self._session(side) as (cursor, sql):
            for name in self.settings.tables:
                cursor.execute(sql.SQL(template).format(table=sql.Identifier(*name.split("."))))
                values = _values(cursor.fetchone())
                states[name] = TableState(int(values[0]), values[1] if self.settings.checksum else None)
        return states


def _verdict(blue: dict[str, TableState], green: dict[str, TableState], lag: float | None) -> Readiness:
    evidence = "; ".join(_compare(name, blue[name], green[name]) for name in blue)
    lag_note = "" if lag is None else f"; lag {_seconds(lag)}"
    if blue == green:
        return Readiness("ready", f"in sync: {evidence}{lag_note}")
    if lag is not None and lag > 0:
        # Green says it is behind: the difference may be rows still on their way (the gate's timeout
        # ends the wait if they never arrive).
        return Readiness("waiting", f"catching up ({_seconds(lag)} behind): {evidence}")
    return Readiness("failed", f"diverged: {evidence}{lag_note}")


def _compare(name: str, blue: TableState, green: TableState) -> str:
    text = f"{name} blue {blue.rows} / green {green.rows} rows"
    if blue.checksum is None:
        return text
    return f"{text}, checksums {'match' if blue.checksum == green.checksum else 'differ'}"


def _sql_module(conn: Any) -> Any:
    """psycopg's or psycopg2's `sql` (the hook picks the driver): composed queries only run on their own."""
    return importlib.import_module(f"{type(conn).__module__.split('.')[0]}.sql")


def _values(row: Any) -> list[Any]:
    # A connection extra may pick a dict cursor.
    if row is None:
        return []
    return list(row.values()) if isinstance(row, dict) else list(row)


def _seconds(value: float) -> str:
    return f"{round(value, 1):g}s"


def _error(err: Exception) -> str:
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first_line}"[:300]
