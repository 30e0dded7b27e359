"""HAProxy router: server weights through the runtime API (admin socket), live, no reload.

Connection: `host` is the admin socket path (`stats socket PATH level admin`), or a host name with
`port` for a TCP runtime API. Settings name the backend and its blue and green servers.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.drivers.connections import get_connection
from include.slow_injection.ports import Change, Readiness, Weights

_WEIGHT = re.compile(r"^(\d+) \(initial \d+\)")
_NAME = r"^[A-Za-z0-9_.:-]+$"
# srv_admin_state bits that keep new traffic off a server: maintenance (forced, inherited, config,
# resolution, health-check) and drain (forced, inherited).
_MAINTENANCE = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
_DRAIN = 0x08 | 0x10
_OP_STATES = {0: "stopped (DOWN)", 1: "starting", 2: "running", 3: "stopping"}


class RuntimeAPIError(RuntimeError):
    pass


def set_weight_command(backend: str, current: Mapping[str, int], target: Mapping[str, int]) -> str:
    """`set weight` for every server of `target` in one request, servers whose weight rises first.

    Why the order matters (HAProxy's roundrobin, `lb_fwrr.c`): while a weight changes, a server whose
    next turn lies beyond the current window plus the backend's total weight moves to the next window.
    Lowering one server first makes that total dip for a moment, and a server can land there; the other
    then takes every request until the window ends (75/25 → 50/50, blue lowered first: up to 60
    requests in a row to green in a standalone HAProxy 2.6.12, 150 in an e2e run). Raising first keeps
    the total at or above both the old and the new one, and the split changes cleanly.
    """
    rising_first = sorted(target, key=lambda server: target[server] <= current.get(server, 0))
    return "; ".join(f"set weight {backend}/{server} {target[server]}" for server in rising_first)


class HAProxyRuntime:
    """One command (or `;`-joined commands) per connection: HAProxy's non-interactive mode."""

    def __init__(self, address: str | tuple[str, int], timeout: float = 3.0) -> None:
        self.address, self.timeout = address, timeout

    def run(self, command: str) -> str:
        family = socket.AF_UNIX if isinstance(self.address, str) else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")


class HAProxyRouter:
    port = "router"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        backend: str = Field(pattern=_NAME)
        blue_server: str = Field(pattern=_NAME)
        green_server: str = Field(pattern=_NAME)

    def __init__(self, runtime: HAProxyRuntime, settings: Settings, name: str = "haproxy") -> None:
        self.runtime, self.settings, self.name = runtime, settings, name

    @classmethod
    def from_spec(
        cls, settings: Settings, connection_id: str | None, *, service: str | None = None, **_: Any
    ) -> HAProxyRouter:
        if not connection_id:
            raise ValueError("haproxy router needs `connection` (an Airflow connection to the runtime API)")
        conn = get_connection(connection_id)
        address: str | tuple[str, int] = (conn.host, int(conn.port)) if conn.port else conn.host
        return cls(HAProxyRuntime(address), settings, name=f"haproxy/{settings.backend}")

    def describe(self) -> str:
        return self.name

    def _server(self, which: str) -> str:
        return f"{self.settings.backend}/{getattr(self.settings, f'{which}_server')}"

    def _get(self, which: str) -> int:
        reply = self.runtime.run(f"get weight {self._server(which)}").strip()
        match = _WEIGHT.match(reply)
        if not match:
            raise RuntimeAPIError(f"haproxy: get weight {self._server(which)}: {reply or 'no answer'}")
        return int(match.group(1))

    def get_weights(self) -> Weights:
        blue, green = self._get("blue"), self._get("green")
        if blue + green == 0:
            raise RuntimeAPIError(f"haproxy: {self.settings.backend} has weight 0 on both servers")
        green_pct = round(100 * green / (blue + green))
        return Weights(blue=100 - green_pct, green=green_pct)

    def set_weights(self, weights: Weights) -> None:
        # Both weights in one request, so the split changes at once; the rising one first.
        blue, green = self.settings.blue_server, self.settings.green_server
        current = {blue: self._get("blue"), green: self._get("green")}
        reply = self.runtime.run(
            set_weight_command(self.settings.backend, current, {blue: weights.blue, green: weights.green})
        ).strip()
        if reply:
            raise RuntimeAPIError(f"haproxy: set weight refused: {reply}")

    def by_hand(self, weights: Weights) -> str:
        """The runtime API command that sets `weights`: for an operator to run when a task could not."""
        where = self.runtime.address if isinstance(self.runtime.address, str) else "{}:{}".format(*self.runtime.address)
        return (
            f"HAProxy backend {self.settings.backend}: `set weight {self._server('blue')} {weights.blue}; "
            f"set weight {self._server('green')} {weights.green}` on the runtime API at {where}"
        )

    def attach_green(self, apply: bool) -> list[Change]:
        return []  # green's server is in the backend already (weight 0); HAProxy checks it there

    def green_ready(self) -> Readiness:
        """Green's server is running and not in maintenance (`show servers state`)."""
        server = self.settings.green_server
        reply = self.runtime.run(f"show servers state {self.settings.backend}")
        for line in reply.splitlines():
            fields = line.split()
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
            if len(fields) > 6 and fields[1] == self.settings.backend and fields[3] == server:
                op_state, admin_state = int(fields[5]), int(fields[6])
                if admin_state & _MAINTENANCE:
                    return Readiness("waiting", f"haproxy: {self._server('green')} is in maintenance")
                if admin_state & _DRAIN:
                    return Readiness("waiting", f"haproxy: {self._server('green')} is draining")
                state = _OP_STATES.get(op_state, str(op_state))
                return Readiness("ready" if op_state == 2 else "waiting", f"haproxy: {self._server('green')} {state}")
        return Readiness("failed", f"haproxy: no server {self._server('green')}: {reply.strip()[:200] or 'no answer'}")
