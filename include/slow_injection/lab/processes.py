"""Start and stop the lab's processes by PID; nothing else is ever signalled."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


class ProcessBook:
    """PIDs of what we started, with each process's start time (ticks since boot), kept in a file so
    another command (`make demo-stop`) can stop them. A PID whose process started at another time was
    reused by the system since: it is never signalled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {k: v if isinstance(v, dict) else {"pid": int(v), "started": None} for k, v in raw.items()}

    def read(self) -> dict[str, int]:
        return {k: int(v["pid"]) for k, v in self._entries().items()}

    def ours(self, name: str) -> int | None:
        """The PID recorded for `name` if that process is still the one we started."""
        entry = self._entries().get(name)
        if entry is None:
            return None
        return entry["pid"] if _started_at(int(entry["pid"])) == entry.get("started") else None

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(entries, indent=1))

    def _forget(self, name: str) -> int | None:
        pid = self.ours(name)
        entries = self._entries()
        entries.pop(name, None)
        self._write(entries)
        return pid

    def start(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self._write({**self._entries(), name: {"pid": proc.pid, "started": _started_at(proc.pid)}})
        return proc

    def stop(self, name: str, grace: float = 10.0) -> None:
        pid = self._forget(name)
        if pid is not None:
            _terminate_group(pid, grace)

    def kill(self, name: str) -> None:
        """SIGKILL the process group at once, as a crash would (no clean shutdown), and wait until it is gone."""
        pid = self._forget(name)
        if pid is not None:
            _terminate_group(pid, grace=0.0, signals=(signal.SIGKILL,))

    def kill_tree(self, name: str) -> list[int]:
        """SIGKILL a process and every process descended from it, whatever their process group (Airflow's
        task processes take groups of their own), as losing the machine under them would. Frozen first
        (SIGSTOP) so none forks while the tree is listed. Returns the PIDs killed."""
        import psutil

        pid = self._forget(name)
        if pid is None:
            return []
        frozen: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return []
        pending = [root]
        while pending:  # stop each process, then list its children: nothing can fork behind our back
            for proc in pending:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGSTOP)
                    frozen[proc.pid] = proc
            children: list[psutil.Process] = []
            for proc in pending:
                with contextlib.suppress(psutil.NoSuchProcess):
                    children += [c for c in proc.children() if c.pid not in frozen]
            pending = children
        for proc in frozen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        deadline = time.time() + 10
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        return sorted(frozen)

    def tree_of(self, name: str) -> set[int]:
        """The PIDs of a process we started and of everything descended from it."""
        import psutil

        pid = self.ours(name)
        if pid is None:
            return set()
        try:
            root = psutil.Process(pid)
            return {pid, *(c.pid for c in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def stop_tree(self, name: str, grace: float = 10.0) -> None:
        """`stop`, then SIGKILL whatever descended from the process and outlived it (a process in a group of
        its own, like Airflow's task processes)."""
        import psutil

        pid = self.ours(name)
        try:
            tree = psutil.Process(pid).children(recursive=True) if pid is not None else []
        except psutil.NoSuchProcess:
            tree = []
        self.stop(name, grace)
        for proc in tree:  # psutil checks the start time first: a reused PID is never signalled
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()

    def exited(self) -> list[str]:
        """Names whose process is gone; a zombie child of ours counts as gone (kill(pid, 0) would not)."""
        return [name for name, pid in self.read().items() if not _alive(pid)]

    def stop_all(self, grace: float = 10.0) -> None:
        for name in reversed(list(self._entries())):
            self.stop(name, grace)


def _started_at(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (field 22 of /proc/PID/stat): fixed for the
    process's life. psutil's create_time() adds a boot time derived from the wall clock, which drifts and
    steps here (seen: a whole second within an afternoon), so a start time compared that way can miss."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return int(fields[19]) if fields[0] != "Z" else None


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


def _terminate_group(
    pid: int, grace: float, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGKILL)
) -> None:
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
