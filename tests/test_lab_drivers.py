"""The first real drivers against real processes: HAProxy's runtime API, Prometheus, HTTP health."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime, RuntimeAPIError
from include.slow_injection.drivers.http_health import HttpHealthCheck
from include.slow_injection.drivers.prometheus import PrometheusSource
from include.slow_injection.lab.lab import Lab, Ports, wait_until
from include.slow_injection.ports import Weights


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    # route_controller=None: these tests write HAProxy through the haproxy router, the only writer
    lab = Lab(tmp_path_factory.mktemp("lab"), Ports.free(), load_rate=20, load_duration=120, route_controller=None)
    lab.start()
    yield lab
    lab.stop()


def router(lab: Lab, **settings: str) -> HAProxyRouter:
    names = {"backend": "web", "blue_server": "blue", "green_server": "green", **settings}
    return HAProxyRouter(HAProxyRuntime(str(lab.admin_socket)), HAProxyRouter.Settings(**names))


def test_haproxy_weights_are_set_live_and_read_back(lab: Lab) -> None:
    r = router(lab)
    assert r.get_weights() == Weights(100, 0)
    for green in (5, 25, 50, 100, 0):
        r.set_weights(Weights.green_at(green))
        assert r.get_weights() == Weights.green_at(green)


def test_haproxy_unknown_server_is_a_clear_error(lab: Lab) -> None:
    with pytest.raises(RuntimeAPIError, match="get weight web/nope"):
        router(lab, green_server="nope").get_weights()
    with pytest.raises(RuntimeAPIError, match="get weight web/nope"):  # read before it writes
        router(lab, green_server="nope").set_weights(Weights(50, 50))


def test_haproxy_green_ready_follows_the_servers_admin_state(lab: Lab) -> None:
    r = router(lab)
    assert r.green_ready().state == "ready"
    r.runtime.run("set server web/green state maint")
    try:
        assert r.green_ready().state == "waiting"
        assert "maintenance" in r.green_ready().detail
    finally:
        r.runtime.run("set server web/green state ready")
    assert r.green_ready().state == "ready"
    assert router(lab, green_server="nope").green_ready().state == "failed"


def test_haproxy_unreachable_socket_raises_so_the_step_retries(tmp_path: Path) -> None:
    r = HAProxyRouter(
        HAProxyRuntime(str(tmp_path / "missing.sock")),
        HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
    )
    with pytest.raises(OSError):
        r.get_weights()


def test_prometheus_values_no_data_and_errors(lab: Lab) -> None:
    prom = PrometheusSource(lab.prometheus_url, timeout=3)
    wait_until(lambda: prom.query('sum(lab_requests_total{env="blue"})').value is not None, "first scrape", 30)
    assert prom.query("vector(0.25)").value == 0.25
    assert prom.query("scalar(vector(2))").value == 2.0
    empty = prom.query('lab_requests_total{env="nowhere"}')
    assert empty.value is None and empty.error is None and not empty.conclusive
    many = prom.query('label_replace(vector(1), "a", "1", "", "") or label_replace(vector(2), "a", "2", "", "")')
    assert many.value is None and "a gate needs exactly one" in many.error
    bad = prom.query("sum(rate(lab_requests_total[5s]")
    assert bad.value is None and "HTTP 400" in bad.error
    nan = prom.query("vector(0) / vector(0)")
    assert not nan.conclusive


def test_prometheus_down_is_inconclusive_not_an_exception() -> None:
    m = PrometheusSource("http://127.0.0.1:9", timeout=1).query("up")
    assert m.value is None and "unreachable" in m.error


def test_http_health_ok_unhealthy_and_unreachable(lab: Lab) -> None:
    def check(url: str) -> HttpHealthCheck:
        return HttpHealthCheck(url, HttpHealthCheck.Settings(url=url))

    assert check(f"{lab.service_url('green')}/healthz").probe().ok
    lab.set_fault("green", unhealthy=True)
    try:
        probe = check(f"{lab.service_url('green')}/healthz").probe()
        assert not probe.ok and probe.detail == "HTTP 503"
    finally:
        lab.set_fault("green", unhealthy=False)
    assert not check("http://127.0.0.1:9/healthz").probe().ok


def test_lab_services_count_requests_and_take_faults(lab: Lab) -> None:
    lab.set_fault("green", error_rate=1.0)
    try:
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(lab.service_url("green") + "/", timeout=2)
        assert failed.value.code == 500
    finally:
        lab.set_fault("green", error_rate=0.0)
    metrics = urllib.request.urlopen(lab.service_url("green") + "/metrics", timeout=2).read().decode()
    assert 'lab_requests_total{env="green",code="500"}' in metrics


def test_load_generator_refuses_anything_but_loopback(tmp_path: Path) -> None:
    started = time.time()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.slow_injection.lab.load",
            "--url",
            "http://10.0.0.1/",
            "--duration",
            "1",
            "--out",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "only targets loopback" in result.stderr
    assert time.time() - started < 10


def test_credentials_never_follow_a_redirect_to_another_host() -> None:
    """urllib re-sent Authorization to wherever a redirect pointed; the drivers' requests session drops it
    when the host changes (127.0.0.1 → localhost here), and keeps it on the same host."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.headers.get("Host", ""), self.headers.get("Authorization")))
            if self.path.startswith("/hop"):
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/api/v1/query?query=up")
                self.end_headers()
                return
            body = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        secret = "Basic c2VjcmV0OnNlY3JldA=="
        assert PrometheusSource(f"http://127.0.0.1:{port}", 3, secret).query("up").value == 1.0
        assert seen[-1] == (f"127.0.0.1:{port}", secret)  # same host: sent
        check = HttpHealthCheck(f"http://127.0.0.1:{port}/hop", HttpHealthCheck.Settings(), secret)
        assert check.probe().ok
        assert seen[-2:] == [(f"127.0.0.1:{port}", secret), (f"localhost:{port}", None)]  # other host: dropped
    finally:
        server.shutdown()
