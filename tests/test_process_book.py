"""The lab's ProcessBook stops only what it started: a recorded PID that now belongs to another
process (the system reused it) is never signalled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from include.slow_injection.lab.processes import ProcessBook


def test_it_stops_what_it_started(tmp_path: Path) -> None:
    book = ProcessBook(tmp_path / "pids.json")
    proc = book.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log")
    assert book.ours("sleeper") == proc.pid
    book.stop("sleeper", grace=2)
    assert proc.wait(timeout=5) is not None and book.read() == {}


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        book = ProcessBook(tmp_path / "pids.json")  # a record of ours whose PID now runs something else
        (tmp_path / "pids.json").write_text(json.dumps({"old": {"pid": stranger.pid, "started": 1.0}}))
        assert book.ours("old") is None
        book.stop_all(grace=1)
        assert stranger.poll() is None  # still running: not ours to signal
        assert book.read() == {}  # and forgotten
    finally:
        stranger.kill()
        stranger.wait()
