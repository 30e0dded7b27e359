"""Start and stop the lab's processes by PID; nothing else is ever signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


class ProcessBook:
    """PIDs of what we started, kept in a file so another command (`make demo-stop`) can stop them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def _write(self, pids: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(pids, indent=1))

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=cwd, start_new_session=True)
        self._write({**self.read(), name: proc.pid})
        return proc

    def stop(self, name: str, grace: float = 10.0) -> None:
        pids = self.read()
        pid = pids.pop(name, None)
        if pid is not None:
            _terminate_group(pid, grace)
        self._write(pids)

    def kill(self, name: str) -> None:
        """SIGKILL the process group at once, as a crash would (no clean shutdown), and wait until it is gone."""
        pids = self.read()
        pid = pids.pop(name, None)
        if pid is not None:
            _terminate_group(pid, grace=0.0, signals=(signal.SIGKILL,))
        self._write(pids)

    def stop_all(self, grace: float = 10.0) -> None:
        for name in reversed(list(self.read())):
            self.stop(name, grace)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _terminate_group(pid: int, grace: float,
                     signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    """SIGTERM the process group we created (start_new_session), then SIGKILL what is left."""
    for sig in signals:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.time() + (grace if sig == signal.SIGTERM else 2)
        while time.time() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
