"""PostgreSQL logical replication blue → green, cut over and reversed, through the Postgres provider's
PostgresHook (data-replication port).

Objects it owns, all named after `name` (nothing else is touched; no table is ever dropped or truncated):
  forward  publication <name>_fwd on blue, subscription <name>_fwd on green (initial copy, then streaming);
  reverse  publication <name>_rev on green, subscription <name>_rev on blue (copy_data = false).
The reverse publication on green marks "past the cut-over": it is made before the forward path goes
and removed only once the forward path is back, so a step cut short resumes where it stopped.

Writes are fenced, not guessed: the side that must not take the application's writes has
`default_transaction_read_only = on` as a database setting, and its client sessions are ended when the
fence goes up, so they reconnect read-only. A client that connects with libpq's
`target_session_attrs=read-write` over both hosts follows the writable side by itself; any other
client gets "cannot execute ... in a read-only transaction" instead of a write that would be lost.
Replication workers are not affected by the setting. A session that turns read-only off itself
escapes the fence: the application must not.

Sequences are not carried by logical replication: at the cut-over (and the reset) every sequence owned
by a column of a replicated table is set on the side that takes writes to at least the other side's
value, while both sides are fenced.

Cost: the initial copy reads every row of every table on blue; the forward and reverse slots hold WAL
on their publisher until the subscriber confirms it (a subscriber down for long fills the disk).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.slow_injection.drivers.postgres_pair import TableName, blue_and_green_hooks, check_two_databases
from include.slow_injection.ports import Change, PrerequisitesMissing, ReplicationNotReady, ReplicationStatus
from include.slow_injection.spec.models import ConnectionId, Duration

SIDES = ("blue", "green")
_OTHER = {"blue": "green", "green": "blue"}
_MASK = "********"
_ADDRESS = r"^[A-Za-z0-9_.:\[\]-]+:\d{1,5}$"

_FENCED = (
    "SELECT coalesce(bool_or(c = 'default_transaction_read_only=on'), false) FROM pg_db_role_setting s,"
    " unnest(s.setconfig) AS c WHERE s.setrole = 0"
    " AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_SUBSCRIPTION = (
    "SELECT subenabled FROM pg_subscription WHERE subname = %s"
    " AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_COPY_STATES = (
    "SELECT r.srrelid::regclass::text, r.srsubstate FROM pg_subscription_rel r"
    " JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = %s"
)
_APPLY_WORKER = "SELECT count(*) FROM pg_stat_subscription WHERE subname = %s AND relid IS NULL AND pid IS NOT NULL"
_SLOT_LAG = (
    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint FROM pg_replication_slots"
    " WHERE slot_name = %s AND database = current_database()"
)
_REPLAY_LAG = "SELECT extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = %s"
_SLOT_CONFIRMED = "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s"
_CLIENTS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)
_OWNED_SEQUENCES = (
    "SELECT DISTINCT s.oid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
    " WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s::regclass AND d.deptype IN ('a', 'i')"
)


class PostgresLogical:
    port = "data_replication"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        blue_connection: ConnectionId = Field(description="Airflow connection to blue's database (the source)")
        green_connection: ConnectionId = Field(description="Airflow connection to green's database (the target)")
        tables: Annotated[list[TableName], Field(min_length=1)] = Field(
            description="tables to replicate, bare or schema-qualified, case-sensitive; same columns on both sides"
        )
        name: str = Field(
            default="slow_injection",
            pattern=r"^[a-z][a-z0-9_]{0,39}$",
            description="prefix of the publications, subscriptions and slots it owns (<name>_fwd, <name>_rev)",
        )
        blue_address: str | None = Field(
            default=None,
            pattern=_ADDRESS,
            description="host:port green's server reaches blue at (default: the connection's host and port)",
        )
        green_address: str | None = Field(
            default=None,
            pattern=_ADDRESS,
            description="host:port blue's server reaches green at (default: the connection's host and port)",
        )
        statement_timeout: Annotated[Duration, Field(gt=0)] = Field(
            default=60.0, description="longest a single statement may run"
        )
        poll: Annotated[Duration, Field(gt=0)] = Field(default=0.2, description="how often a drain re-reads the slot")

        @model_validator(mode="after")
        def _two_databases(self) -> PostgresLogical.Settings:
            check_two_databases(self.blue_connection, self.green_connection, self.tables)
            return self

    def __init__(self, hooks: dict[str, Any], settings: Settings) -> None:
        self.hooks, self.settings = hooks, settings

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> PostgresLogical:
        hooks = blue_and_green_hooks(
            "postgres_logical", settings.blue_connection, settings.green_connection, connection_id
        )
        return cls(hooks, settings)

    def describe(self) -> str:
        s = self.settings
        return f"postgres logical {s.blue_connection} → {s.green_connection} ({len(s.tables)} table(s), {s.name})"

    # --- reading ---------------------------------------------------------------------------------

    def prerequisites(self) -> list[str]:
        problems: list[str] = []
        columns: dict[str, dict[str, list[tuple[str, str]] | None]] = {}
        with self._sessions() as db:
            for side in SIDES:
                problems += db[side].setup_problems()
                columns[side] = {t: db[side].columns(t) for t in self.settings.tables}
                problems += [f"{db[side].label}: {p}" for t in self.settings.tables for p in db[side].table_problems(t)]
            started = db["green"].subscription(self._fwd) is not None or db["green"].publication_exists(self._rev)
            if not started:  # the initial copy would collide with rows already there
                for table in self.settings.tables:
                    rows = db["green"].has_rows(table) if columns["green"][table] is not None else False
                    if rows:
                        problems.append(
                            f"{db['green'].label}: table {table} already has rows; the initial copy needs it empty "
                            "(this step never truncates: empty it yourself or replicate into a fresh database)"
                        )
        for table in self.settings.tables:
            blue_cols, green_cols = columns["blue"][table], columns["green"][table]
            if blue_cols is not None and green_cols is not None and blue_cols != green_cols:
                problems.append(f"table {table}: schemas differ: {_column_difference(blue_cols, green_cols)}")
        return problems

    def status(self) -> ReplicationStatus:
        with self._sessions() as db:
            return self._status(db)

    def _status(self, db: dict[str, _Side]) -> ReplicationStatus:
        fwd, rev = db["green"].subscription(self._fwd), db["blue"].subscription(self._rev)
        path = {(True, False): "forward", (False, True): "reverse", (False, False): "none"}.get(
            (fwd is not None, rev is not None), "mixed"
        )
        fenced = {side: db[side].fenced() for side in SIDES}
        writable = {(False, True): "blue", (True, False): "green", (True, True): "none"}.get(
            (fenced["blue"], fenced["green"]), "both"
        )
        if path not in ("forward", "reverse"):
            return ReplicationStatus(path, writable, False, None, None, False, f"writes on {writable}")
        publisher, subscriber, sub = ("blue", "green", self._fwd) if path == "forward" else ("green", "blue", self._rev)
        states = db[subscriber].copy_states(sub)
        copying = sorted(t for t, s in states.items() if s != "r")
        copy_done = bool(states) and not copying
        streaming = bool(fwd if path == "forward" else rev) and db[subscriber].apply_worker(sub)
        lag_bytes, lag_seconds = db[publisher].lag(sub)
        detail = f"{path} {publisher} → {subscriber}, writes on {writable}"
        if copying:
            detail += f", copying {', '.join(copying)}"
        return ReplicationStatus(path, writable, copy_done, lag_bytes, lag_seconds, streaming, detail)

    # --- converging ------------------------------------------------------------------------------

    def start(self, apply: bool) -> list[Change]:
        with self._sessions() as db:
            if db["green"].publication_exists(self._rev) or self._writes_on_green(db):
                return []  # past the cut-over: the forward path is not wanted any more
            problems = self._problems_unless_started(db)
            if problems:
                raise PrerequisitesMissing(problems)
            steps = _Steps(apply)
            self._forward(db, steps, copy_data=True)
            return steps.changes

    def _problems_unless_started(self, db: dict[str, _Side]) -> list[str]:
        # A started path was checked when it started (and green's tables are no longer empty).
        return [] if db["green"].subscription(self._fwd) is not None else self.prerequisites()

    def cut_over(self, apply: bool, timeout: float) -> list[Change]:
        with self._sessions() as db:
            steps = _Steps(apply)
            if self._writes_on_green(db):
                return []
            if not db["green"].publication_exists(self._rev):  # not begun: the forward path must be ready
                status = self._status(db)
                ready = status.readiness(float("inf"), 2**62)  # the gate before held the lag bound
                if ready.state != "ready" and apply:
                    raise ReplicationNotReady(f"no cut-over, nothing fenced: {ready.detail}")
                if ready.state != "ready":
                    steps.note("cut-over", ready.detail, "refused until the forward path is ready")
            fenced_at = time.monotonic()
            self._fence(db["blue"], steps, always_end_sessions=True)
            if db["green"].subscription(self._fwd) is not None:
                self._drain(db, steps, "blue", self._fwd, timeout)
            self._sequences(db, steps, source="blue", target="green")
            db["green"].ensure_publication(steps, self._rev, self.settings.tables)
            db["green"].drop_subscription(steps, self._fwd)
            db["blue"].ensure_subscription(steps, self._rev, self._conninfo(db["green"]), self._rev, copy_data=False)
            db["green"].unfence(steps)
            steps.note("writes", "on blue", f"on green after {time.monotonic() - fenced_at:.3f}s with both fenced")
            return steps.changes

    def reset(self, apply: bool, timeout: float) -> list[Change]:
        with self._sessions() as db:
            steps = _Steps(apply)
            if db["green"].publication_exists(self._rev):  # past the cut-over: bring blue back up to date first
                fenced_at = time.monotonic()
                self._fence(db["green"], steps, always_end_sessions=db["blue"].subscription(self._rev) is not None)
                if db["blue"].subscription(self._rev) is not None:
                    self._drain(db, steps, "green", self._rev, timeout)
                self._sequences(db, steps, source="green", target="blue")
                db["blue"].drop_subscription(steps, self._rev)
                self._forward(db, steps, copy_data=False)  # both sides hold the same rows now
                db["green"].drop_publication(steps, self._rev)
                db["blue"].unfence(steps)
                steps.note("writes", "on green", f"on blue after {time.monotonic() - fenced_at:.3f}s with both fenced")
            elif self._writes_on_green(db):
                raise ReplicationNotReady(
                    "the reverse path was removed: blue lacks green's later writes, so writes stay on green"
                )
            else:  # before the cut-over, or a cut-over that stopped before any write moved
                db["blue"].unfence(steps)
            return steps.changes

    def remove(self, apply: bool) -> list[Change]:
        with self._sessions() as db:
            if db["green"].subscription(self._fwd) is not None:
                raise ReplicationNotReady(
                    "not removing: the forward path (blue → green) still runs; green never took the writes"
                )
            steps = _Steps(apply)
            db["blue"].drop_subscription(steps, self._rev)
            db["green"].drop_publication(steps, self._rev)
            db["blue"].drop_publication(steps, self._fwd)
            return steps.changes

    # --- the pieces ------------------------------------------------------------------------------

    @property
    def _fwd(self) -> str:
        return f"{self.settings.name}_fwd"

    @property
    def _rev(self) -> str:
        return f"{self.settings.name}_rev"

    def _writes_on_green(self, db: dict[str, _Side]) -> bool:
        """The cut-over finished: green is unfenced only as its last step (blue fenced, no forward path)."""
        return db["green"].subscription(self._fwd) is None and db["blue"].fenced() and not db["green"].fenced()

    def _forward(self, db: dict[str, _Side], steps: _Steps, copy_data: bool) -> None:
        if db["green"].subscription(self._fwd) is None:
            self._fence(db["green"], steps, always_end_sessions=False)
        else:
            db["green"].fence(steps)
        db["blue"].ensure_publication(steps, self._fwd, self.settings.tables)
        db["green"].ensure_subscription(steps, self._fwd, self._conninfo(db["blue"]), self._fwd, copy_data)

    def _fence(self, side: _Side, steps: _Steps, always_end_sessions: bool) -> None:
        changed = side.fence(steps)
        if changed or always_end_sessions:
            side.end_client_sessions(steps)

    def _drain(self, db: dict[str, _Side], steps: _Steps, publisher: str, slot: str, timeout: float) -> None:
        """Wait until the subscriber confirmed everything the (fenced) publisher wrote."""
        side = db[publisher]
        target = side.scalar("SELECT pg_current_wal_lsn()::text")
        if not steps.apply:
            steps.note(f"{side.label} slot {slot}", f"lag {side.lag(slot)[0]} bytes", "drained to 0 (waits)")
            return
        deadline = time.monotonic() + timeout
        while not side.scalar(_SLOT_CONFIRMED, (target, slot)):
            if time.monotonic() > deadline:
                raise ReplicationNotReady(
                    f"{side.label} slot {slot} did not confirm {target} within {timeout:g}s; writes stay fenced "
                    "on both sides (nothing lost): re-run the step, or roll back"
                )
            time.sleep(self.settings.poll)
        steps.note(f"{side.label} slot {slot}", "lagging", f"drained to {target}", applied=True)

    def _sequences(self, db: dict[str, _Side], steps: _Steps, source: str, target: str) -> None:
        for table in self.settings.tables:
            for sequence in db[source].owned_sequences(table):
                value = db[source].scalar(f"SELECT last_value FROM {sequence}")  # a regclass text, quoted
                current = db[target].scalar(f"SELECT last_value FROM {sequence}")
                if value is None or current is None or current >= value:
                    continue
                steps.run(
                    db[target],
                    f"sequence {sequence} at {current}",
                    "SELECT setval(%s::regclass, %s, true)",
                    (sequence, value),
                    shown=f"SELECT setval('{sequence}', {value}, true)",
                )

    def _conninfo(self, publisher: _Side) -> tuple[str, str]:
        """How the other server reaches `publisher`: the real string and the one to log (no password)."""
        address = self.settings.blue_address if publisher.env == "blue" else self.settings.green_address
        conn = publisher.connection
        host, port = address.rsplit(":", 1) if address else (conn.host or "localhost", str(conn.port or 5432))
        parts = {"host": host, "port": port, "dbname": publisher.database, "user": conn.login or ""}
        shown = " ".join(f"{k}={_quote(v)}" for k, v in parts.items() if v)
        if conn.password:
            return f"{shown} password={_quote(conn.password)}", f"{shown} password={_MASK}"
        return shown, shown

    @contextmanager
    def _sessions(self) -> Iterator[dict[str, _Side]]:
        opened: dict[str, _Side] = {}
        try:
            for side in SIDES:
                opened[side] = _Side.open(side, self.hooks[side], self.settings)
            yield opened
        finally:
            for s in opened.values():
                s.conn.close()


@dataclass
class _Steps:
    """The changes of one call, each applied as it is found (or only listed under dry-run)."""

    apply: bool
    changes: list[Change] = field(default_factory=list)

    def run(self, side: _Side, before: str, statement: Any, params: Any = None, shown: str | None = None) -> None:
        text = shown or (statement if isinstance(statement, str) else statement.as_string(side.conn))
        if self.apply:
            side.execute(statement, params)
        self.changes.append(Change(side.label, before, text, applied=self.apply))

    def note(self, target: str, before: str, after: str, applied: bool | None = None) -> None:
        self.changes.append(Change(target, before, after, applied=self.apply if applied is None else applied))


@dataclass
class _Side:
    """One database, in one autocommit session that may write even when the database is fenced."""

    env: str
    conn: Any
    connection: Any  # the Airflow Connection (host, port, login, password)
    sql: Any
    database: str
    label: str

    @classmethod
    def open(cls, env: str, hook: Any, settings: PostgresLogical.Settings) -> _Side:
        conn = hook.get_conn()
        conn.autocommit = True  # CREATE/DROP SUBSCRIPTION refuse a transaction block
        side = cls(env, conn, None, _sql_module(conn), "", "")
        side.execute("SET default_transaction_read_only = off")  # our own session passes the fence
        side.execute(
            "SELECT set_config('statement_timeout', %s, false)", (str(round(settings.statement_timeout * 1000)),)
        )
        side.connection = hook.get_connection(getattr(hook, hook.conn_name_attr))
        side.database = side.scalar("SELECT current_database()")
        side.label = f"{env} {side.database}"
        return side

    def execute(self, statement: Any, params: Any = None) -> Any:
        with self.conn.cursor() as cursor:
            cursor.execute(statement, params)
            return _values(cursor.fetchone()) if cursor.description else None

    def rows(self, statement: Any, params: Any = None) -> list[list[Any]]:
        with self.conn.cursor() as cursor:
            cursor.execute(statement, params)
            return [_values(r) for r in cursor.fetchall()]

    def scalar(self, statement: Any, params: Any = None) -> Any:
        row = self.execute(statement, params)
        return row[0] if row else None

    # reading
    def fenced(self) -> bool:
        return bool(self.scalar(_FENCED))

    def subscription(self, name: str) -> bool | None:
        """None: no such subscription here; else whether it is enabled."""
        return self.scalar(_SUBSCRIPTION, (name,))

    def publication_exists(self, name: str) -> bool:
        return bool(self.scalar("SELECT count(*) FROM pg_publication WHERE pubname = %s", (name,)))

    def publication_tables(self, name: str) -> set[str]:
        return {
            r[0]
            for r in self.rows(
                "SELECT prrelid::regclass::text FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = %s",
                (name,),
            )
        }

    def copy_states(self, subscription: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self.rows(_COPY_STATES, (subscription,))}

    def apply_worker(self, subscription: str) -> bool:
        return bool(self.scalar(_APPLY_WORKER, (subscription,)))

    def lag(self, slot: str) -> tuple[int | None, float | None]:
        return self.scalar(_SLOT_LAG, (slot,)), self.scalar(_REPLAY_LAG, (slot,))

    def regclass(self, table: str) -> str | None:
        return self.scalar(
            "SELECT to_regclass(%s)::text", (self.sql.Identifier(*table.split(".")).as_string(self.conn),)
        )

    def columns(self, table: str) -> list[tuple[str, str]] | None:
        name = self.regclass(table)
        if name is None:
            return None
        return [
            (r[0], r[1])
            for r in self.rows(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (name,),
            )
        ]

    def has_rows(self, table: str) -> bool:
        return bool(
            self.scalar(self.sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(self.sql.Identifier(*table.split("."))))
        )

    def owned_sequences(self, table: str) -> list[str]:
        name = self.regclass(table)
        return sorted(r[0] for r in self.rows(_OWNED_SEQUENCES, (name,))) if name else []

    def setup_problems(self) -> list[str]:
        out = []
        wal_level = self.scalar("SHOW wal_level")
        if wal_level != "logical":
            out.append(
                f"{self.label}: wal_level is {wal_level}; logical replication needs wal_level=logical on both "
                "sides (the reverse path publishes from green): set it and restart the server"
            )
        for setting in ("max_replication_slots", "max_wal_senders"):
            if int(self.scalar(f"SHOW {setting}")) < 1:
                out.append(f"{self.label}: {setting} is 0; needs at least 1 (one slot per direction)")
        superuser, replication, owner = self.execute(
            "SELECT r.rolsuper, r.rolreplication, pg_has_role(d.datdba, 'MEMBER') FROM pg_roles r, pg_database d"
            " WHERE r.rolname = current_user AND d.datname = current_database()"
        )
        if not (superuser or replication):
            out.append(
                f"{self.label}: role {self.connection.login or 'of the connection'} lacks REPLICATION "
                "(ALTER ROLE … REPLICATION): the other side's subscription connects as it"
            )
        if not superuser:
            out.append(
                f"{self.label}: role {self.connection.login or 'of the connection'} is not a superuser: "
                "CREATE SUBSCRIPTION needs one on PostgreSQL 15 (pg_create_subscription from 16)"
            )
        if not (superuser or owner):
            out.append(f"{self.label}: the connection's role does not own the database (the write fence alters it)")
        return out

    def table_problems(self, table: str) -> list[str]:
        name = self.regclass(table)
        if name is None:
            return [f"table {table} does not exist"]
        identity, has_key = self.execute(
            "SELECT relreplident, EXISTS (SELECT 1 FROM pg_index WHERE indrelid = c.oid AND indisprimary)"
            " FROM pg_class c WHERE c.oid = %s::regclass",
            (name,),
        )
        if identity == "n" or (identity == "d" and not has_key):
            return [
                f"table {table} has no primary key or replica identity: updates and deletes could not be "
                "replicated (add a primary key, or ALTER TABLE … REPLICA IDENTITY USING INDEX / FULL)"
            ]
        return []

    # converging
    def fence(self, steps: _Steps) -> bool:
        if self.fenced():
            return False
        steps.run(
            self,
            "writable",
            self.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                self.sql.Identifier(self.database)
            ),
        )
        return True

    def unfence(self, steps: _Steps) -> None:
        if self.fenced():
            steps.run(
                self,
                "read-only (fenced)",
                self.sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
                    self.sql.Identifier(self.database)
                ),
            )

    def end_client_sessions(self, steps: _Steps) -> None:
        steps.run(self, "client sessions opened before the fence", _CLIENTS)

    def ensure_publication(self, steps: _Steps, name: str, tables: list[str]) -> None:
        listed = self.sql.SQL(", ").join(self.sql.Identifier(*t.split(".")) for t in tables)
        if not self.publication_exists(name):
            steps.run(
                self,
                f"no publication {name}",
                self.sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(self.sql.Identifier(name), listed),
            )
            return
        wanted = {self.regclass(t) for t in tables}
        if self.publication_tables(name) != wanted:
            steps.run(
                self,
                f"publication {name} with other tables",
                self.sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(self.sql.Identifier(name), listed),
            )

    def drop_publication(self, steps: _Steps, name: str) -> None:
        if self.publication_exists(name):
            steps.run(
                self, f"publication {name}", self.sql.SQL("DROP PUBLICATION {}").format(self.sql.Identifier(name))
            )

    def ensure_subscription(
        self, steps: _Steps, name: str, conninfo: tuple[str, str], publication: str, copy_data: bool
    ) -> None:
        enabled = self.subscription(name)
        if enabled is None:
            template = "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = {})"
            ident, pub, copy = (
                self.sql.Identifier(name),
                self.sql.Identifier(publication),
                self.sql.SQL(str(copy_data).lower()),
            )
            real = self.sql.SQL(template).format(ident, self.sql.Literal(conninfo[0]), pub, copy)
            shown = self.sql.SQL(template).format(ident, self.sql.Literal(conninfo[1]), pub, copy).as_string(self.conn)
            steps.run(self, f"no subscription {name}", real, shown=shown)
        elif not enabled:
            steps.run(
                self,
                f"subscription {name} disabled",
                self.sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(self.sql.Identifier(name)),
            )

    def drop_subscription(self, steps: _Steps, name: str) -> None:
        # Drops its slot on the publisher too; the tables stay as they are.
        if self.subscription(name) is not None:
            steps.run(
                self, f"subscription {name}", self.sql.SQL("DROP SUBSCRIPTION {}").format(self.sql.Identifier(name))
            )


def _column_difference(blue: list[tuple[str, str]], green: list[tuple[str, str]]) -> str:
    only_blue = [f"{n} {t}" for n, t in blue if (n, t) not in green]
    only_green = [f"{n} {t}" for n, t in green if (n, t) not in blue]
    parts = []
    if only_blue:
        parts.append(f"only on blue: {', '.join(only_blue)}")
    if only_green:
        parts.append(f"only on green: {', '.join(only_green)}")
    return "; ".join(parts) or "same columns in a different order"


def _quote(value: str) -> str:
    """A libpq conninfo value, quoted when it needs to be."""
    if value and all(c.isalnum() or c in "._-:/" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_module(conn: Any) -> Any:
    return importlib.import_module(f"{type(conn).__module__.split('.')[0]}.sql")


def _values(row: Any) -> list[Any]:
    if row is None:
        return []
    return list(row.values()) if isinstance(row, dict) else list(row)
