"""What the PostgreSQL drivers that work on two databases share: blue's and green's connections, each
through the Postgres provider's PostgresHook, and the rules for the tables they name."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

# Plain SQL identifiers only, optionally schema-qualified; used exactly as written (quoted, so
# case-sensitive), never formatted into SQL as text.
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
TableName = Annotated[str, Field(pattern=rf"^{_IDENTIFIER}(\.{_IDENTIFIER})?$")]


def check_two_databases(blue_connection: str, green_connection: str, tables: list[str]) -> None:
    """Raises ValueError (pydantic reports it at the spec's field) for one database named twice (comparing or
    replicating a database with itself is never what a spec means) or a repeated table."""
    if blue_connection == green_connection:
        raise ValueError("blue_connection and green_connection must name different connections")
    if len(set(tables)) != len(tables):
        raise ValueError("tables must not repeat")


def blue_and_green_hooks(
    driver: str, blue_connection: str, green_connection: str, connection_id: str | None
) -> dict[str, Any]:
    """{"blue": PostgresHook, "green": PostgresHook}; the provider is imported only when a task builds one."""
    if connection_id:
        raise ValueError(f"{driver} takes `blue_connection` and `green_connection`, not `connection`")
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return {
        "blue": PostgresHook(postgres_conn_id=blue_connection),
        "green": PostgresHook(postgres_conn_id=green_connection),
    }
