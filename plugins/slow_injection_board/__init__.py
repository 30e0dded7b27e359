"""The Migration board: an Airflow UI plugin showing where every service of every wave runs, with
its latest gate verdicts and the runs' evaluation reports. Airflow loads board_plugin.py (the other
modules are listed in .airflowignore and imported only when the API server serves a request)."""

URL_PREFIX = "/slow-injection"  # where the API server mounts the board's app
