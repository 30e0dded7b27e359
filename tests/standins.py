"""A Prometheus HTTP API stand-in whose answers a test chooses: healthy, down, hanging, empty, NaN,
garbage. Real sockets, so the real Prometheus driver (urllib, its timeout) is what is exercised."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWERS: dict[str, tuple[int, str]] = {
    "http_503": (503, "service unavailable: TSDB not ready"),
    "query_error": (200, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})),
    "empty": (200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})),
    "nan": (
        200,
        json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "NaN"]}]}}
        ),
    ),
    "garbage": (200, "<html>not an API answer</html>"),
    "two_series": (
        200,
        json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"pod": "a"}, "value": [0, "0.001"]},
                        {"metric": {"pod": "b"}, "value": [0, "0.002"]},
                    ],
                },
            }
        ),
    ),
}
HEALTHY = (
    200,
    json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.001"]}]}}
    ),
)


class PrometheusStandIn:
    """`mode` is one of ANSWERS, "hang" (answers after `hang_for` s), or "healthy". With `basic_auth`
    set ("user:password"), requests without it get 401; every Authorization header is recorded."""

    def __init__(self, mode: str = "healthy", hang_for: float = 1.5, basic_auth: str | None = None) -> None:
        self.mode, self.hang_for, self.basic_auth = mode, hang_for, basic_auth
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                if stand_in.basic_auth:
                    expected = "Basic " + base64.b64encode(stand_in.basic_auth.encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        return self._send(401, "unauthorized")
                if stand_in.mode == "hang":
                    time.sleep(stand_in.hang_for)
                    status, body = HEALTHY
                else:
                    status, body = ANSWERS.get(stand_in.mode, HEALTHY)
                self._send(status, body)

            def _send(self, status: int, body: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body.encode())
                except OSError:
                    pass  # the client gave up (its timeout)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> PrometheusStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
