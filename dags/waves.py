"""Migration wave DAGs for Airflow: one DAG per wave spec in include/waves/ (see README).

Parsing is pure: specs are read from disk and validated; no network, no driver is contacted.
Broken specs are reported by wave_spec_errors.py; the valid waves here load regardless.
"""

from __future__ import annotations

from airflow.sdk import get_parsing_context

from include.slow_injection.builders.factory import build_dag
from include.slow_injection.spec import load_wave, load_waves, waves_dir

_wanted = get_parsing_context().dag_id  # set when a worker runs one task: build only that DAG


def _waves_to_build():
    """A worker reads only its wave's own file (named after the wave id): validating every spec cost each
    task process ~0.14 s per spec at 100 specs (bench/parse_time.py). The dag-processor reads them all."""
    if _wanted and _wanted.startswith("wave_"):
        for suffix in (".yaml", ".yml"):
            path = waves_dir() / f"{_wanted.removeprefix('wave_')}{suffix}"
            if path.is_file():
                return [load_wave(path)]
    return load_waves().waves


for _wave in _waves_to_build():
    if _wanted is None or _wanted == _wave.dag_id:
        globals()[_wave.dag_id] = build_dag(_wave)
