"""Detection → 100 % blue latency in the lab, over several drills on one running Airflow.

Each drill triggers the lab wave, injects a 50 % error rate into green when it reaches the first
traffic step, and measures from the failed gate's verdict (the moment the trigger decided) to the
first HAProxy read of 100 % blue (polled every 0.1 s). The gate poll interval printed is read from
the spec (the web service's gates), the scrape interval from the lab's Prometheus settings; the goal
is a median within one poll + 10 s.

    make bench        # or: .venv/bin/python bench/rollback_latency.py --drills 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import yaml  # noqa: E402

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime  # noqa: E402
from include.slow_injection.durations import format_duration, parse_duration  # noqa: E402
from include.slow_injection.lab.airflow_stack import AirflowStack  # noqa: E402
from include.slow_injection.lab.lab import Lab, Ports  # noqa: E402
from include.slow_injection.ports import Weights  # noqa: E402
from include.slow_injection.spec import load_wave  # noqa: E402

DAG = "wave_lab-web"


def drill(lab: Lab, airflow: AirflowStack, router: HAProxyRouter) -> dict:
    lab.set_fault("green", error_rate=0.0)
    router.set_weights(Weights(100, 0))
    lab.reset_platform()
    run_id = airflow.trigger(DAG)
    injected = restored = None
    while True:
        w = router.get_weights()
        if injected is None and w.green > 0:
            lab.set_fault("green", error_rate=0.5)
            injected = time.time()
        if injected and restored is None and w.green == 0:
            restored = time.time()
        if restored or (time.time() - (injected or time.time()) > 180):
            break
        time.sleep(0.1)
    state = airflow.wait_for_run(DAG, run_id, timeout=300)
    tis = airflow.task_instances(DAG, run_id)
    failed = [t for t, ti in tis.items() if ".gate_" in t and ti["state"] == "failed"]
    verdict = airflow.xcom(DAG, run_id, failed[0], "verdict") if failed else None
    detected = verdict["finished_at"] if verdict else None
    return {
        "run_id": run_id,
        "state": state,
        "gate": failed[0] if failed else None,
        "fault_to_detection_s": round(detected - injected, 2) if detected and injected else None,
        "detection_to_blue_s": round(restored - detected, 2) if detected and restored else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drills", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    lab = Lab(root / "lab", Ports.free())
    waves = root / "waves"
    waves.mkdir()
    spec = yaml.safe_load((ROOT / "include" / "waves" / "lab-web.yaml").read_text())
    spec.get("validation", {}).pop("approval", None)  # a human's answer is not what this measures
    (waves / "lab-web.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    airflow = AirflowStack(root / "airflow", waves, extra_env=lab.airflow_env())
    poll_s = max(g.interval for g in load_wave(waves / "lab-web.yaml").service("web").gates)
    scrape_s = parse_duration(lab.scrape_interval)
    goal_s = poll_s + 10
    results = []
    try:
        lab.start()
        router = HAProxyRouter(
            HAProxyRuntime(str(lab.admin_socket)),
            HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
        )
        airflow.start()
        airflow.wait_for_dag(DAG)
        for i in range(args.drills):
            result = drill(lab, airflow, router)
            print(f"drill {i + 1}: {result}", flush=True)
            results.append(result)
    finally:
        airflow.stop()
        lab.stop()
    latencies = [r["detection_to_blue_s"] for r in results if r["detection_to_blue_s"] is not None]
    summary = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.node()} {os.cpu_count()} cpu",
        "drills": len(results),
        "measured": len(latencies),
        "gate_poll_s": poll_s,
        "scrape_interval_s": scrape_s,
        "median_s": round(statistics.median(latencies), 2) if latencies else None,
        "max_s": max(latencies) if latencies else None,
        "goal": f"median ≤ poll + 10 s = {goal_s:g} s",
        "command": f"python bench/rollback_latency.py --drills {args.drills}",
        "runs": results,
    }
    met = bool(latencies) and len(latencies) == len(results) and summary["median_s"] <= goal_s
    summary["met"] = met
    print(
        f"detection → 100 % blue over {len(latencies)} of {len(results)} drills: median {summary['median_s']} s, "
        f"max {summary['max_s']} s (gate poll {format_duration(poll_s)} from the spec, Prometheus scrape "
        f"{format_duration(scrape_s)} from the lab; goal median ≤ poll + 10 s = {goal_s:g} s: "
        f"{'met' if met else 'missed'})"
    )
    with open(ROOT / "bench" / "results" / "rollback_latency.jsonl", "a") as out:
        out.write(json.dumps(summary) + "\n")
    return 0 if len(latencies) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
