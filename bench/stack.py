"""Starting the lab's real Airflow for a benchmark on a machine other jobs share."""

from __future__ import annotations


def start_patiently(airflow, attempts: int = 2) -> None:
    """AirflowStack.start gives the components 120 s; under heavy load that can run out once."""
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
