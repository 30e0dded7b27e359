"""HTTP health check: one GET per probe; a 2xx (or the statuses the spec lists) is healthy."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.drivers.connections import base_url, basic_auth, get_connection
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

    def __init__(self, url: str, settings: Settings, authorization: str | None = None) -> None:
        self.url, self.settings = url, settings
        self._authorization = authorization  # the connection's login/password, never part of url

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> HttpHealthCheck:
        if settings.url:
            return cls(settings.url, settings)
        if not connection_id:
            raise ValueError("http health check needs `url`, or `connection` and `path`")
        conn = get_connection(connection_id)
        return cls(base_url(conn) + (settings.path or "/"), settings, basic_auth(conn))

    def describe(self) -> str:
        return f"http {self.url}"

    def _healthy(self, status: int) -> bool:
        return status in self.settings.expect_status if self.settings.expect_status else 200 <= status < 300

    def probe(self) -> Probe:
        try:
            headers = {"Authorization": self._authorization} if self._authorization else {}
            request = urllib.request.Request(self.url, headers=headers)
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            return Probe(False, f"unreachable: {getattr(err, 'reason', err)}")
        return Probe(self._healthy(status), f"HTTP {status}")
