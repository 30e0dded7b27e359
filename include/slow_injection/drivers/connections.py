"""Driver addresses come from Airflow Connections (never from specs), looked up only when used."""

from __future__ import annotations

from typing import Any


def get_connection(conn_id: str) -> Any:
    """An Airflow Connection by id: in a task, the triggerer or dag.test()."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def base_url(conn: Any, default_scheme: str = "http") -> str:
    """`scheme://host:port/path` from a Connection's fields; a full URL in host is taken as is."""
    host = (conn.host or "").strip()
    if "://" in host:
        return host.rstrip("/")
    scheme = conn.schema or default_scheme
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}"
