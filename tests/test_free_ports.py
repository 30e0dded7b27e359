"""The lab's ports come from below the kernel's ephemeral range, where outgoing connections never take them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from include.slow_injection.lab.free_ports import _ephemeral_start, free_ports

ROOT = Path(__file__).resolve().parents[1]


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


def test_a_port_handed_out_is_never_handed_out_again_even_before_it_is_bound() -> None:
    # The lab chose HAProxy's port, then the control plane chose the same one before HAProxy bound it.
    first, second = free_ports(300), free_ports(300)
    assert not set(first) & set(second)


def test_another_process_of_the_suite_never_gets_a_port_this_one_was_handed() -> None:
    ours = set(free_ports(400))  # unbound: only the claim keeps them from the other process
    script = "from include.slow_injection.lab.free_ports import free_ports; print(*free_ports(400))"
    theirs = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    # Without the claim, two random picks of 400 among ~12,700 ports share about 12.
    assert len(theirs) == 400 and not ours & {int(p) for p in theirs}
