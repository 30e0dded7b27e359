"""The lab's ports come from below the kernel's ephemeral range, where outgoing connections never take them."""

from __future__ import annotations

import socket

from include.slow_injection.lab.free_ports import _ephemeral_start, free_ports


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(20000 <= p < _ephemeral_start() for p in ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_chosen() -> None:
    listeners = []
    try:
        for port in free_ports(50):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen()
            listeners.append(s)
        taken = {s.getsockname()[1] for s in listeners}
        for _ in range(20):
            assert not taken & set(free_ports(5))
    finally:
        for s in listeners:
            s.close()
