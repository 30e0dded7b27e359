"""Slow Injection: blue-green migration waves with canary-style gradual release, as Airflow DAGs."""
