"""Shows each broken wave spec as a DAG import error in the Airflow UI, naming file, field and
reason. Valid waves still load from waves.py; this file defines no DAG."""

from __future__ import annotations

from include.slow_injection.spec import load_waves


class WaveSpecError(Exception):
    pass


_errors = load_waves().errors
if _errors:
    raise WaveSpecError("\n".join(str(e) for e in _errors))
