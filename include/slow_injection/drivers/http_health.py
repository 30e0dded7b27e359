"""HTTP health check: one GET per probe; a 2xx (or the statuses the spec lists) is healthy."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.drivers.connections import base_url, basic_auth, get_connection, http_session
from include.slow_injection.ports import Probe


class HttpHealthCheck:
    port = "health_check"

    class Settings(BaseModel):
        """Either a full `url`, or a `path` on the service the check's `connection` points at."""

        model_config = ConfigDict(extra="forbid", strict=True)
        url: str | None = Field(default=None, pattern=r"^https?://\S+$")
        path: str | None = Field(default=None, pattern=r"^/\S*$")
        expect_status: list[int] = Field(default_factory=list, description="empty = any 2xx")
        timeout: float = Field(default=2.0, gt=0, le=60)

    def __init__(self, url: str, settings: Settings, authorization: str | None = None, session: Any = None) -> None:
        self.url, self.settings = url, settings
        self._authorization = authorization  # the connection's login/password, never part of url
        self._session = session or http_session()

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> HttpHealthCheck:
        if settings.url:
            return cls(settings.url, settings)
        if not connection_id:
            raise ValueError("http health check needs `url`, or `connection` and `path`")
        conn = get_connection(connection_id)
        return cls(base_url(conn) + (settings.path or "/"), settings, basic_auth(conn), http_session(conn))

    def describe(self) -> str:
        return f"http {self.url}"

    def _healthy(self, status: int) -> bool:
        return status in self.settings.expect_status if self.settings.expect_status else 200 <= status < 300

    def probe(self) -> Probe:
        import requests

        headers = {"Authorization": self._authorization} if self._authorization else {}
        try:
            status = self._session.get(self.url, headers=headers, timeout=self.settings.timeout).status_code
        except requests.RequestException as err:
            return Probe(False, f"unreachable: {err}")
        return Probe(self._healthy(status), f"HTTP {status}")
