"""The lab's ProcessBook stops only what it started: a recorded PID that now belongs to another
process (the system reused it) is never signalled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

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


# A parent whose child leaves the parent's process group (as Airflow's task processes do): prints the child's PID.
FORKS_AWAY = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _tree(book: ProcessBook, tmp_path: Path) -> tuple[int, int]:
    log = tmp_path / "tree.log"
    proc = book.start("tree", [sys.executable, "-c", FORKS_AWAY], log)
    deadline = time.time() + 20
    while not log.read_text().strip():
        assert time.time() < deadline, "the child never started"
        time.sleep(0.05)
    return proc.pid, int(log.read_text().split()[0])


def test_kill_tree_kills_the_descendants_in_groups_of_their_own(tmp_path: Path) -> None:
    book = ProcessBook(tmp_path / "pids.json")
    parent, child = _tree(book, tmp_path)
    assert book.tree_of("tree") == {parent, child}
    assert book.kill_tree("tree") == sorted([parent, child])
    deadline = time.time() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.time() < deadline, "the child outlived kill_tree"
        time.sleep(0.05)
    assert book.read() == {} and book.kill_tree("tree") == []


def test_stop_tree_leaves_no_descendant_behind(tmp_path: Path) -> None:
    book = ProcessBook(tmp_path / "pids.json")
    parent, child = _tree(book, tmp_path)
    book.stop_tree("tree", grace=2)
    deadline = time.time() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.time() < deadline, "the child outlived stop_tree"
        time.sleep(0.05)
    assert not psutil.pid_exists(parent) or psutil.Process(parent).status() == psutil.STATUS_ZOMBIE
