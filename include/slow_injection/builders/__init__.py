"""One builder per seed phase. Stage-based builders are pure (spec in, stages out) so `plan`
and the DAG factory read the same thing; render.py turns stages into Airflow tasks."""
