"""Reading and driving a wave run on the e2e Airflow (the `lab` fixture of tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse

from include.slow_injection.drivers.haproxy import HAProxyRouter


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


class WeightWatch:
    """Reads HAProxy's weights every 0.2 s in a thread; keeps each change."""

    def __init__(self, router: HAProxyRouter) -> None:
        self.router, self.seen, self.errors = router, [router.get_weights()], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                w = self.router.get_weights()
            except OSError as err:  # HAProxy is never down in these drills: worth showing
                self.errors.append(str(err))
                continue
            if self.seen[-1] != w:
                self.seen.append(w)

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(timeout=5)
        return [w.green for w in self.seen]


def try_of(lab, dag: str, run_id: str, task_id: str, try_number: int) -> dict:
    return lab.airflow.get(
        f"/api/v2/dags/{dag}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/tries/{try_number}"
    )
