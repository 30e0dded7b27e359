"""Deferrable gates for wave DAGs. They live in plugins/ because Airflow only runs triggers that
come from outside the DAG bundle."""
