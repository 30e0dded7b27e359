"""A Prometheus HTTP API stand-in whose answers a test chooses: healthy, down, hanging, empty, NaN,
garbage. Real sockets, so the real Prometheus driver (urllib, its timeout) is what is exercised."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from include.slow_injection.lab.service import Server, State, make_handler

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


class WebhookStandIn:
    """A Slack incoming webhook on 127.0.0.1: records each POST, answers with `status`."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stand_in.posts.append({"path": self.path, "json": json.loads(self.rfile.read(length))})
                answer = b"ok" if stand_in.status == 200 else b"internal_error"
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietServer(Server):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # locust drops in-flight requests at -t: broken pipes are expected


class LabTarget:
    """The lab's green service on a free port, recording every path it is asked for."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.state = State("green")
        self.paths: list[str] = []
        self.server = QuietServer(("127.0.0.1", 0), self._handler(redirect_to))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self, redirect_to: str | None) -> type:
        paths = self.paths

        class Recording(make_handler(self.state)):  # type: ignore[misc]
            def do_GET(self) -> None:
                paths.append(self.path)
                if redirect_to is None:
                    return super().do_GET()
                self.send_response(302)
                self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Recording

    def __enter__(self) -> LabTarget:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
