"""Migration wave DAGs for Airflow: one DAG per wave spec in include/waves/ (see README).

Parsing is pure: specs are read from disk and validated; no network, no driver is contacted.
Broken specs are reported by wave_spec_errors.py; the valid waves here load regardless.
"""

from __future__ import annotations

from airflow.sdk import get_parsing_context

from include.slow_injection.builders.factory import build_dag
from include.slow_injection.spec import load_waves

_wanted = get_parsing_context().dag_id  # set when a worker runs one task: build only that DAG

for _wave in load_waves().waves:
    if _wanted is None or _wanted == _wave.dag_id:
        globals()[_wave.dag_id] = build_dag(_wave)
