"""A weight change on a real HAProxy moves the split at once, with no run of requests to one side.

HAProxy's roundrobin can hand one server every request until its window ends if a change lowers a
weight before it raises the other (see `set_weight_command`). The control case sends the lowering
command first and must show such a run, so the test proves the order matters on this HAProxy.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator

import pytest

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.lab.service import Server, State, make_handler
from include.slow_injection.ports import Weights
from tests.support.reruns import HAProxy

CHANGES = 24  # 75/25 → 50/50 and back, with 100 requests before each: over two of HAProxy's windows
AFTER = 40  # requests right after each change, where a run to one side would show


def backend(env: str) -> Server:
    """The lab's own service (it answers with its env's name), in a thread."""
    server = Server(("127.0.0.1", 0), make_handler(State(env)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    blue, green = backend("blue"), backend("green")
    address = "127.0.0.1:{}".format
    haproxy = HAProxy(tmp_path_factory.mktemp("order"), address(blue.server_port), address(green.server_port))
    yield haproxy.start()
    haproxy.stop()
    blue.shutdown()
    green.shutdown()


def served_by(proxy: HAProxy) -> str:
    host, port = proxy.frontend.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        return connection.getresponse().read().decode().strip()
    finally:
        connection.close()


def longest_green_run(proxy: HAProxy, change: Callable[[Weights], None]) -> int:
    """The most requests in a row to green right after a 75/25 ↔ 50/50 change, over CHANGES changes."""
    change(Weights.green_at(25))
    longest = 0
    for turn in range(CHANGES):
        for _ in range(100):
            served_by(proxy)
        change(Weights.green_at(50 if turn % 2 == 0 else 25))
        run = 0
        for _ in range(AFTER):
            run = run + 1 if served_by(proxy) == "green" else 0
            longest = max(longest, run)
    return longest


def test_the_driver_changes_the_split_with_no_run_to_green(proxy: HAProxy) -> None:
    router = HAProxyRouter(
        HAProxyRuntime(str(proxy.socket)),
        HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
    )
    # At 50/50 round-robin alternates; at 25 % green is never picked twice in a row.
    assert longest_green_run(proxy, router.set_weights) <= 2


def test_lowering_blue_first_does_send_green_a_run_on_this_haproxy(proxy: HAProxy) -> None:
    def blue_first(weights: Weights) -> None:
        assert proxy.run(f"set weight web/blue {weights.blue}; set weight web/green {weights.green}").strip() == ""

    assert longest_green_run(proxy, blue_first) >= 10
