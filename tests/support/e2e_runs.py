"""Reading and driving a wave run on the e2e Airflow (the `lab` fixture of tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import time
import urllib.error


def problems(tis: dict, lab=None) -> dict:
    out = {k: v["state"] for k, v in tis.items() if v["state"] not in ("success", "skipped")}
    if lab is not None:  # the failed gates' verdicts say why
        for task_id in [t for t in out if ".gate_" in t or ".health_" in t]:
            ti = tis[task_id]
            out[task_id] = lab.airflow.xcom(ti["dag_id"], ti["dag_run_id"], task_id, "verdict")
    return out


def patient(call, tries: int = 3):
    """An API read that timed out (a loaded machine) is asked again, not a failed test."""
    for attempt in range(tries):
        try:
            return call()
        except (TimeoutError, urllib.error.URLError):
            if attempt == tries - 1:
                raise
            time.sleep(2)
    return None


def post_run(lab, dag: str, conf: dict) -> tuple[int, dict]:
    """Triggers `dag` through the REST API with `conf`: (200, the run) or (the HTTP error, its body)."""
    lab.airflow._request("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False})
    try:
        run = lab.airflow._request("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None, "conf": conf})
        return 200, run
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")
