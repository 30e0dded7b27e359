"""A demo service for the lab: answers every path, exposes Prometheus metrics, takes faults at runtime.

    python -m include.slow_injection.lab.service --env blue --port 18081

GET /metrics      lab_requests_total{env,code} and lab_request_duration_seconds histogram
GET /healthz      200, or 503 when the fault says unhealthy
GET|POST /fault   {"error_rate": 0.0-1.0, "latency_ms": N, "unhealthy": bool}
anything else     200 (or 500 at the injected error rate) after the injected latency
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class State:
    def __init__(self, env: str, latency_ms: float = 0.0) -> None:
        self.env = env
        self.lock = threading.Lock()
        self.fault = {"error_rate": 0.0, "latency_ms": float(latency_ms), "unhealthy": False}
        self.requests: dict[str, int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0

    def observe(self, code: int, seconds: float) -> None:
        with self.lock:
            self.requests[str(code)] = self.requests.get(str(code), 0) + 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1
            self.duration_sum += seconds
            self.duration_count += 1

    def exposition(self) -> str:
        with self.lock:
            env = self.env
            lines = ["# TYPE lab_requests_total counter"]
            lines += [f'lab_requests_total{{env="{env}",code="{c}"}} {n}' for c, n in sorted(self.requests.items())]
            lines.append("# TYPE lab_request_duration_seconds histogram")
            lines += [
                f'lab_request_duration_seconds_bucket{{env="{env}",le="{b}"}} {n}'
                for b, n in zip(BUCKETS, self.buckets, strict=False)
            ]
            lines.append(f'lab_request_duration_seconds_bucket{{env="{env}",le="+Inf"}} {self.duration_count}')
            lines.append(f'lab_request_duration_seconds_sum{{env="{env}"}} {self.duration_sum}')
            lines.append(f'lab_request_duration_seconds_count{{env="{env}"}} {self.duration_count}')
        return "\n".join(lines) + "\n"


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep the lab quiet
            pass

        def _send(self, code: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Served-By", state.env)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                return self._send(200, state.exposition(), "text/plain; version=0.0.4")
            if self.path == "/fault":
                return self._send(200, json.dumps(state.fault), "application/json")
            if self.path == "/healthz":
                return self._send(503 if state.fault["unhealthy"] else 200, state.env)
            start = time.perf_counter()
            if state.fault["latency_ms"]:
                time.sleep(state.fault["latency_ms"] / 1000 * random.uniform(0.8, 1.2))
            code = 500 if random.random() < state.fault["error_rate"] else 200
            self._send(code, f"{state.env}\n")
            state.observe(code, time.perf_counter() - start)

        def do_POST(self) -> None:
            if self.path != "/fault":
                return self._send(404, "not found")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                update = json.loads(self.rfile.read(length) or b"{}")
                for key in update:
                    if key not in state.fault:
                        raise ValueError(f"unknown fault {key!r}")
                state.fault.update({k: type(state.fault[k])(v) for k, v in update.items()})
            except (ValueError, TypeError) as err:
                return self._send(400, str(err))
            self._send(200, json.dumps(state.fault), "application/json")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", required=True, choices=["blue", "green"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="base latency (a real service is not instant)")
    args = parser.parse_args()
    Server(("127.0.0.1", args.port), make_handler(State(args.env, args.latency_ms))).serve_forever()


if __name__ == "__main__":
    main()
