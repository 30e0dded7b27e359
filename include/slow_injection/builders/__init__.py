"""Airflow DAG building: the wave's DAG (factory.py) from the planners' stages (phases/), each task from
its kind's recipe (render.py, kinds/); the trigger form; post-release, rollback and the emergency DAG."""
