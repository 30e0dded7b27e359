"""Blue's and green's PostgreSQL clusters for data-migration tests, and a writer that keeps inserting and
updating orders on whichever side takes writes, logging every write it saw committed."""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from include.slow_injection.lab.postgres import Postgres

ORDERS = """
CREATE TABLE orders (
    id bigserial PRIMARY KEY, ref text NOT NULL UNIQUE, amount int NOT NULL, note text NOT NULL DEFAULT ''
)
"""
PASSWORD = "s3cret-never-logged"  # trust auth ignores it; the tests check it is never shown


@dataclass
class Clusters:
    blue: Postgres
    green: Postgres
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def connect(self, side: str, dbname: str) -> psycopg.Connection:
        port = (self.blue if side == "blue" else self.green).port
        return psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname={dbname}", autocommit=True)


def start_clusters(root: Path) -> Iterator[Clusters]:
    blue, green = Postgres(root / "blue", logical=True), Postgres(root / "green", logical=True)
    try:
        blue.start()
        green.start()
        yield Clusters(blue, green)
    finally:
        blue.stop()
        green.stop()


@dataclass
class Database:
    """One database of the same name on both clusters, with Airflow connections `<side>_<name>`."""

    name: str
    clusters: Clusters
    sessions: dict[str, psycopg.Connection]

    def connection_id(self, side: str) -> str:
        return f"{side}_{self.name}"

    def run(self, side: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """On a session of its own that passes the write fence; reconnected when a fence ended it."""
        for attempt in (1, 2):
            try:
                cursor = self.sessions[side].execute(statement, params)
                return cursor.fetchall() if cursor.description else []
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                self.sessions[side].close()
                self.sessions[side] = self.clusters.connect(side, self.name)
                self.sessions[side].execute("SET default_transaction_read_only = off")
        raise AssertionError("unreachable")

    def rows(self, side: str) -> dict[int, tuple[str, int]]:
        return {r[0]: (r[1], r[2]) for r in self.run(side, "SELECT id, ref, amount FROM orders")}


def make_database(clusters: Clusters, monkeypatch: pytest.MonkeyPatch, schema: str = ORDERS) -> Iterator[Database]:
    name = f"shop{next(clusters.counter)}"
    sessions = {}
    for side, cluster in (("blue", clusters.blue), ("green", clusters.green)):
        cluster.create_database(name)
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{side.upper()}_{name.upper()}",
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:{cluster.port}/{name}?connect_timeout=5",
        )
        sessions[side] = clusters.connect(side, name)
        sessions[side].execute("SET default_transaction_read_only = off")
        sessions[side].execute(schema)
    db = Database(name, clusters, sessions)
    try:
        yield db
    finally:
        # Subscriptions hold workers and slots on the shared clusters: drop them (each drops its slot).
        for side in ("green", "blue"):
            for (sub,) in db.run(side, "SELECT subname FROM pg_subscription"):
                db.run(side, f'DROP SUBSCRIPTION "{sub}"')
        for session in sessions.values():
            session.close()


def digest(rows: dict[int, tuple[str, int]]) -> tuple[int, str]:
    """Row count and an order-independent checksum (the sum of every row's md5)."""
    total = sum(int(hashlib.md5(repr((k, *v)).encode()).hexdigest(), 16) for k, v in rows.items())
    return len(rows), format(total % (1 << 128), "032x")


@dataclass(frozen=True)
class Write:
    op: str  # insert | update
    id: int
    ref: str
    amount: int
    port: int  # the server that committed it
    at: float


class Writer(threading.Thread):
    """Inserts (60 %) and updates orders, one write per transaction, on the writable one of blue and
    green (libpq's target_session_attrs=read-write), until stopped, `limit` writes or `max_seconds`.
    A write whose commit was cut off is looked up by its ref after reconnecting, so none is counted twice
    or lost from the log."""

    def __init__(self, db: Database, limit: int = 20000, max_seconds: float = 120.0, pause: float = 0.003) -> None:
        super().__init__(daemon=True)
        ports = f"{db.clusters.blue.port},{db.clusters.green.port}"
        self.conninfo = (
            f"host=127.0.0.1,127.0.0.1 port={ports} user=postgres dbname={db.name} "
            "target_session_attrs=read-write connect_timeout=2"
        )
        self.limit, self.max_seconds, self.pause = limit, max_seconds, pause
        self.log: list[Write] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.random = random.Random(20)
        self.known: dict[int, str] = {}
        self.key_conflicts = 0

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)

    def writes_on(self, port: int) -> int:
        return sum(1 for w in self.log if w.port == port)

    def wait_for(self, port: int, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.writes_on(port) < count:
            assert self.is_alive() and time.monotonic() < deadline, (
                f"writer: {self.writes_on(port)} of {count} writes on :{port}; errors {self.errors[-3:]}"
            )
            time.sleep(0.05)

    def expected(self) -> dict[int, tuple[str, int]]:
        """What the table must hold after the seed rows: the log replayed in order."""
        rows: dict[int, tuple[str, int]] = {}
        for w in self.log:
            rows[w.id] = (w.ref, w.amount)
        return rows

    def switch_pause(self) -> float:
        """Longest gap between two committed writes on different servers (the cut-over's pause)."""
        pairs = zip(self.log, self.log[1:], strict=False)
        return max((b.at - a.at for a, b in pairs if a.port != b.port), default=0.0)

    def run(self) -> None:
        started, conn = time.monotonic(), None
        n = 0
        while not self.stopping.is_set() and n < self.limit and time.monotonic() - started < self.max_seconds:
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                self._write(conn, n)
                n += 1
            except psycopg.Error as err:
                self.errors.append(f"{type(err).__name__}: {str(err).strip()[:120]}")
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def _write(self, conn: psycopg.Connection, n: int) -> None:
        port = int(conn.info.port)
        if not self.known or self.random.random() < 0.6:
            ref, amount = f"w{n}", self.random.randint(1, 10**6)
            try:
                row = conn.execute(
                    "INSERT INTO orders (ref, amount) VALUES (%s, %s) RETURNING id", (ref, amount)
                ).fetchone()
            except psycopg.errors.UniqueViolation as err:
                if err.diag.constraint_name != "orders_ref_key":  # an id taken: a sequence behind the rows
                    self.key_conflicts += 1
                    raise
                row = self._committed(ref)  # an earlier try committed: the write is in
                if row is None:
                    raise
            except psycopg.OperationalError:
                row = self._committed(ref)  # the commit was cut off: in, or retried with the same ref
                if row is None:
                    raise
            assert row is not None
            self.known[row[0]] = ref
            self.log.append(Write("insert", row[0], ref, amount, port, time.monotonic()))
        else:
            order_id = self.random.choice(list(self.known))
            amount = self.random.randint(1, 10**6)
            # Setting an absolute value: a retried update changes nothing more.
            updated = conn.execute("UPDATE orders SET amount = %s WHERE id = %s", (amount, order_id)).rowcount
            if updated != 1:
                self.errors.append(f"update of order {order_id} on :{port} found no row")
            self.log.append(Write("update", order_id, self.known[order_id], amount, port, time.monotonic()))

    def _committed(self, ref: str) -> tuple[int] | None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                return conn.execute("SELECT id FROM orders WHERE ref = %s", (ref,)).fetchone()
        except psycopg.Error:
            return None
