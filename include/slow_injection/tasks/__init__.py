"""Airflow operators that carry out a wave's steps through the driver ports."""
