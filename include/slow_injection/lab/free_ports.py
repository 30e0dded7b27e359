"""Free loopback ports for the lab's servers, chosen below the kernel's ephemeral range.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range it takes the local
port of every outgoing connection from. Between choosing a port and the server binding it (seconds, while a
control plane starts), a busy machine's outgoing connections can take it: the server then fails with
"address already in use" (seen in CI, 2026-12-05). Below that range only other listeners compete, and a
random pick that binds now is free unless one of them picks the same port in the same moment.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_FALLBACK_EPHEMERAL_START = 32768


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_START


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that nothing listens on or uses now, in 20000 up to the ephemeral range."""
    low, high = 20000, _ephemeral_start() - 1
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        for port in random.sample(range(low, high), k=min(2000, high - low)):
            if len(chosen) == count:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            held.append(s)  # held until all are chosen, so none is picked twice
            chosen.append(port)
    finally:
        for s in held:
            s.close()
    if len(chosen) < count:
        raise RuntimeError(f"found only {len(chosen)} free ports of {count} below the ephemeral range")
    return chosen


def free_port() -> int:
    return free_ports(1)[0]
