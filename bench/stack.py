"""Starting the lab's real Airflow for a benchmark on a machine other jobs share."""

from __future__ import annotations

import time
import urllib.error


def compile_project() -> None:
    """The project's bytecode, once: this environment sets PYTHONDONTWRITEBYTECODE, and without .pyc files
    every task process compiles our modules again when it parses its DAG file (tests/run_suite.sh does
    the same for the suite)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "2", "include", "plugins", "dags", "bench"],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_patiently(airflow, attempts: int = 2) -> None:
    """AirflowStack.start gives the components 120 s; under heavy load that can run out once. The project
    is compiled first (compile_project)."""
    compile_project()
    for attempt in range(1, attempts + 1):
        try:
            airflow.start()
            return
        except TimeoutError:
            if attempt == attempts:
                raise
            print("Airflow was slow to start (loaded machine): starting it once more", flush=True)


def exit_cleanly_on_sigterm() -> None:
    """`timeout` and `kill` send SIGTERM, which skips `finally:` by default: the Airflow and PostgreSQL the
    benchmark started would outlive it. Turned into SystemExit, the benchmark stops them first."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def patiently(call, *args, tries: int = 10):
    """The API server of a loaded 2-core machine sometimes answers after the client's 30 s: ask again."""
    for attempt in range(tries):
        try:
            return call(*args)
        except (OSError, urllib.error.URLError):
            if attempt == tries - 1:
                raise
            time.sleep(2)
