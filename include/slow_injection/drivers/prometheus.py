"""Prometheus metric source: instant queries over the HTTP API. An empty result is no data, and
timeouts, HTTP errors and query errors are inconclusive: none of them ever passes a gate."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.drivers.connections import base_url, get_connection
from include.slow_injection.ports import Measurement


class PrometheusSource:
    port = "metric_source"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        timeout: float = Field(default=5.0, gt=0, le=120)

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> PrometheusSource:
        if not connection_id:
            raise ValueError("prometheus source needs `connection` (an Airflow connection to the server)")
        return cls(base_url(get_connection(connection_id)), settings.timeout)

    def describe(self) -> str:
        return f"prometheus {self.url}"

    def query(self, query: str) -> Measurement:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:200]
            return Measurement(None, f"prometheus HTTP {err.code}: {detail}")
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
            return Measurement(None, f"prometheus unreachable: {getattr(err, 'reason', err)}")
        return self.parse(body)

    @staticmethod
    def parse(body: dict[str, Any]) -> Measurement:
        if body.get("status") != "success":
            return Measurement(None, f"prometheus error: {body.get('errorType')}: {body.get('error')}")
        data = body.get("data", {})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            raw = result[1]
        elif kind == "vector":
            if not result:
                return Measurement(None)  # no data
            if len(result) > 1:
                return Measurement(None, f"query returned {len(result)} series; a gate needs exactly one")
            raw = result[0]["value"][1]
        else:
            return Measurement(None, f"unsupported result type {kind!r}")
        value = float(raw)
        return Measurement(value if not math.isnan(value) else None, None if not math.isnan(value) else "NaN")
