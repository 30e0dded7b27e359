"""Free loopback ports for the lab's servers, chosen below the kernel's ephemeral range, never twice.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range it takes the local
port of every outgoing connection from. Between choosing a port and the server binding it (seconds, while a
control plane starts), a busy machine's outgoing connections can take it: the server then fails with
"address already in use" (seen in CI, 2026-12-05). Below that range only other listeners compete.

Those listeners are mostly ours: a port chosen but not bound yet passes the bind test again. Once the lab
had chosen HAProxy's frontend port, the control plane chose the same one, and kube-controller-manager lost
it (CI, 2026-12-05). So every port handed out is claimed for the life of the process: remembered here, and
locked (`flock` on a file per port) so that the suite's other processes skip it too.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

_FALLBACK_EPHEMERAL_START = 32768
CLAIMS = Path(tempfile.gettempdir()) / "slow-injection-ports"
_claimed: dict[int, int] = {}  # port → the open lock file that claims it, until this process exits
_choosing = threading.Lock()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_START


def _claim(port: int) -> bool:
    """Lock `port`'s file for this process; False if this or another live process claimed it."""
    if port in _claimed:
        return False
    fd = os.open(CLAIMS / str(port), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _claimed[port] = fd
    return True


def _release(port: int) -> None:
    os.close(_claimed.pop(port))


def free_ports(count: int) -> list[int]:
    """`count` distinct ports in 20000 up to the ephemeral range that nothing listens on now and that no
    live process of the suite was handed before."""
    low, high = 20000, _ephemeral_start() - 1
    chosen: list[int] = []
    CLAIMS.mkdir(mode=0o1777, exist_ok=True)
    with _choosing:
        for port in random.sample(range(low, high), k=min(2000, high - low)):
            if len(chosen) == count:
                break
            if not _claim(port):
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    _release(port)
                    continue
            chosen.append(port)
    if len(chosen) < count:
        raise RuntimeError(f"found only {len(chosen)} free ports of {count} below the ephemeral range")
    return chosen


def free_port() -> int:
    return free_ports(1)[0]
