"""Prometheus metric source: instant and range queries over the HTTP API. An empty result is no data,
and timeouts, HTTP errors and query errors are inconclusive: none of them ever passes a gate."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.drivers.connections import base_url, basic_auth, get_connection, http_session
from include.slow_injection.ports import Measurement, Series


class PrometheusSource:
    port = "metric_source"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        timeout: float = Field(default=5.0, gt=0, le=120)

    def __init__(self, url: str, timeout: float = 5.0, authorization: str | None = None, session: Any = None) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self._authorization = authorization  # kept out of url: describe() and errors show the url
        self._session = session or http_session()

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> PrometheusSource:
        if not connection_id:
            raise ValueError("prometheus source needs `connection` (an Airflow connection to the server)")
        conn = get_connection(connection_id)
        return cls(base_url(conn), settings.timeout, basic_auth(conn), http_session(conn))

    def describe(self) -> str:
        return f"prometheus {self.url}"

    def _get(self, endpoint: str, params: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        """The decoded JSON body, or why there is none (HTTP error, unreachable, not JSON)."""
        import requests

        headers = {"Authorization": self._authorization} if self._authorization else {}
        try:
            response = self._session.get(
                f"{self.url}/api/v1/{endpoint}", params=params, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as err:
            return None, f"prometheus unreachable: {err}"
        if response.status_code >= 400:
            return None, f"prometheus HTTP {response.status_code}: {response.text[:200]}"
        try:
            return response.json(), None
        except ValueError as err:
            return None, f"prometheus answered something that is not JSON: {err}"

    def query(self, query: str) -> Measurement:
        body, error = self._get("query", {"query": query})
        return Measurement(None, error) if body is None else self.parse(body)

    def query_range(self, query: str, start: float, end: float, step: float) -> Series:
        if step <= 0 or end < start:
            return Series((), f"bad range: start {start}, end {end}, step {step}")
        body, error = self._get(
            "query_range", {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        )
        return Series((), error) if body is None else self.parse_range(body)

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

    @staticmethod
    def parse_range(body: dict[str, Any]) -> Series:
        """A matrix of exactly one series: its values, oldest first, NaN dropped."""
        if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
            return Series((), "prometheus answer is not an API response")
        if body.get("status") != "success":
            return Series((), f"prometheus error: {body.get('errorType')}: {body.get('error')}")
        data = body.get("data", {})
        kind, result = data.get("resultType"), data.get("result")
        if kind != "matrix":
            return Series((), f"unsupported result type {kind!r} for a range query")
        if not result:
            return Series(())  # no data
        if len(result) > 1:
            return Series((), f"query returned {len(result)} series; parity needs exactly one")
        try:
            values = [float(raw) for _, raw in result[0].get("values", [])]
        except (TypeError, ValueError) as err:
            return Series((), f"prometheus sample not a number: {err}")
        return Series(tuple(v for v in values if not math.isnan(v)))
