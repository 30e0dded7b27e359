"""A wave's lasting state between runs (an Airflow Variable): whether it completed. A completed
wave's later runs only verify the world; a rollback clears the mark."""

from __future__ import annotations

import time
from typing import Any


def _key(wave_id: str) -> str:
    return f"slow_injection_completed__{wave_id}"


def completed(wave_id: str) -> dict[str, Any] | None:
    from airflow.sdk import Variable

    return Variable.get(_key(wave_id), default=None, deserialize_json=True)


def mark_completed(wave_id: str, run_id: str) -> None:
    from airflow.sdk import Variable

    Variable.set(
        _key(wave_id),
        {"run_id": run_id, "at": time.time()},
        serialize_json=True,
        description=f"wave {wave_id} completed: later runs verify the world and change nothing",
    )


def clear(wave_id: str) -> None:
    from airflow.sdk import Variable

    if completed(wave_id) is not None:
        Variable.delete(_key(wave_id))
