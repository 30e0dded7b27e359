"""A slow HAProxy runtime API for resilience drills: a proxy takes the admin socket's path, forwards
every command to HAProxy and holds the next `set weight` command a few seconds first, so a task can
be killed while its weight change is in flight. A held command is still forwarded when its sender
died meanwhile (it was on the wire). Every command is recorded with the PID of the process that
sent it (SO_PEERCRED), so a drill knows exactly which process is inside a weight change.

HAProxy keeps listening on the moved socket (a rename keeps the inode), so traffic never stops.
"""

from __future__ import annotations

import re
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from include.slow_injection.drivers.haproxy import HAProxyRuntime

_SET = re.compile(r"set weight (\S+) (\d+)")


@dataclass
class Command:
    at: float
    pid: int
    text: str
    held: bool = False
    forwarded_at: float | None = None
    reply: str | None = None
    sender_gone: bool = False  # the reply could not be delivered

    def weights(self) -> dict[str, int]:
        """`set weight web/blue 95; set weight web/green 5` → {"web/blue": 95, "web/green": 5}."""
        return {server: int(weight) for server, weight in _SET.findall(self.text)}


class SlowAdminSocket:
    """Use as a context manager; `hold_next(seconds)` arms the delay for the next `set weight`.

    The delay must stay below the driver's socket timeout (HAProxyRuntime: 3 s), or the step would
    fail on its own instead of being caught in flight."""

    def __init__(self, admin_socket: Path) -> None:
        self.path = admin_socket
        self.behind = admin_socket.with_name(admin_socket.stem + "-behind-proxy" + admin_socket.suffix)
        self.commands: list[Command] = []
        self.held = threading.Event()  # set when a held command starts waiting
        self._hold: float = 0.0
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def hold_next(self, seconds: float) -> None:
        with self._lock:
            self._hold = seconds
            self.held.clear()

    def held_commands(self) -> list[Command]:
        return [c for c in self.commands if c.held]

    def sets(self) -> list[Command]:
        return [c for c in self.commands if c.text.startswith("set weight")]

    def __enter__(self) -> SlowAdminSocket:
        if self.behind.exists():
            raise RuntimeError(f"{self.behind} exists: another proxy is running, or one was not cleaned up")
        self.path.rename(self.behind)
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request, self.rfile)

        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        except OSError:
            self.behind.rename(self.path)
            raise
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.path.unlink(missing_ok=True)
        self.behind.rename(self.path)

    def _serve(self, conn: socket.socket, rfile) -> None:
        pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        text = rfile.readline().decode(errors="replace").strip()
        command = Command(at=time.time(), pid=pid, text=text)
        with self._lock:
            self.commands.append(command)
            hold, command.held = (self._hold, True) if self._hold and text.startswith("set weight") else (0.0, False)
            if hold:
                self._hold = 0.0
        if hold:
            self.held.set()
            time.sleep(hold)
        command.reply = HAProxyRuntime(str(self.behind)).run(text)
        command.forwarded_at = time.time()
        try:
            conn.sendall(command.reply.encode())
        except OSError:
            command.sender_gone = True
