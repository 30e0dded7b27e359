"""Driver addresses come from Airflow Connections (never from specs), looked up only when used."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any


def get_connection(conn_id: str) -> Any:
    """An Airflow Connection by id: in a task, the triggerer or dag.test()."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def base_url(conn: Any, default_scheme: str = "http") -> str:
    """`scheme://host:port/path` from a Connection's fields; a full URL in host is taken as is, minus
    any `user:password@` (see basic_auth): the URL ends up in logs, XComs and reports."""
    host = (conn.host or "").strip()
    if "://" in host:
        return _without_userinfo(host).rstrip("/")
    scheme = conn.schema or default_scheme
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}"


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if "@" in parts.netloc else url


def basic_auth(conn: Any) -> str | None:
    """An `Authorization: Basic …` value from the Connection's login and password, else from a
    `user:password@` in a full-URL host; None without a login."""
    login, password = conn.login or "", conn.password or ""
    host = (conn.host or "").strip()
    if not login and "://" in host:
        parts = urllib.parse.urlsplit(host)
        login, password = urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or "")
    if not login:
        return None
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def http_session(conn: Any = None) -> Any:
    """A requests Session for one driver: TLS settings from the Connection's extra (`verify`: false or a
    CA bundle path, `cert` and `key`: a client certificate, `proxies`: {"https": …}). Credentials go on
    each request's headers, so requests drops them when a redirect leads to another host (urllib would
    send them on)."""
    import requests

    session = requests.Session()
    extra = (conn.extra_dejson if conn is not None else None) or {}
    if "verify" in extra:
        session.verify = extra["verify"]
    if extra.get("cert"):
        session.cert = (extra["cert"], extra["key"]) if extra.get("key") else extra["cert"]
    if extra.get("proxies"):
        session.proxies.update(extra["proxies"])
    return session
