"""A throwaway PostgreSQL cluster on loopback: Airflow's metadata DB (e2e tests, the demo), and blue's and
green's application databases (`logical=True`: wal_level=logical, for logical replication between them)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

from include.slow_injection.lab.free_ports import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    return _bin(name)


class Postgres:
    """initdb + pg_ctl as the `postgres` user when run as root (initdb refuses root)."""

    def __init__(self, root: Path, port: int | None = None, logical: bool = False) -> None:
        self.root = root.resolve()
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.port = port or free_port()
        self.logical = logical

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def _as_owner(self, argv: list[str]) -> list[str]:
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "runuser"
        return [runuser, "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def start(self) -> None:
        self.stop()
        if self.root.exists():
            shutil.rmtree(self.root)
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            for parent in self.root.parents:  # the postgres user must be able to reach the folder
                if parent != Path("/") and not os.stat(parent).st_mode & 0o001:
                    os.chmod(parent, os.stat(parent).st_mode | 0o011)
        run: dict[str, Any] = dict(check=True, capture_output=True, text=True)
        subprocess.run(
            self._as_owner(
                [_bin("initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
            ),
            **run,
        )
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        if self.logical:
            # A publisher and a subscriber at once (the reverse path publishes from green); a restarted
            # worker retries after 1 s instead of 5 s.
            options += (
                " -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10"
                " -c max_logical_replication_workers=8 -c wal_retrieve_retry_interval=1s"
            )
        subprocess.run(
            self._as_owner(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-w",
                    "-l",
                    str(self.root / "postgres.log"),
                    "start",
                ]
            ),
            **run,
        )
        subprocess.run(
            self._as_owner([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "airflow"]),
            **run,
        )

    def create_database(self, name: str) -> None:
        subprocess.run(
            self._as_owner([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name]),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        stopped = subprocess.run(
            self._as_owner([_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        if stopped.returncode != 0 and pid_file.exists():
            # pg_ctl as the postgres user can lose its way in (e.g. another pytest session made
            # /tmp/pytest-of-root 0700 again): stop the postmaster by its PID (SIGINT: fast shutdown).
            _stop_pid(int(pid_file.read_text().split()[0]))


def _stop_pid(pid: int, timeout: float = 30.0) -> None:
    import signal
    import time

    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
