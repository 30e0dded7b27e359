"""Emergency rollback: one manually triggered DAG that returns a wave's services to blue, whatever
state the wave's DAG is in, and stops the wave's running run from moving their traffic again
(see include/slow_injection/builders/emergency_dag.py and tasks/emergency.py).

Parsing is pure: the wave specs are read for their ids and service names; no driver is contacted.
"""

from __future__ import annotations

from airflow.sdk import get_parsing_context

from include.slow_injection.builders.emergency_dag import DAG_ID, build_dag
from include.slow_injection.spec import load_waves

if get_parsing_context().dag_id in (None, DAG_ID):  # a worker running another DAG's task skips this
    _waves = load_waves().waves
    if _waves:
        emergency_rollback = build_dag(_waves)
