"""`make demo` / `make drill`: the lab wave on a real Airflow, moving real traffic through HAProxy.

Starts the lab (blue and green services, HAProxy, Prometheus, load) and Airflow (API server,
scheduler, dag-processor, triggerer on a throwaway PostgreSQL) under .demo/, triggers wave_lab-web
through the REST API, prints what happens, and leaves everything running for the UI until
`make demo-stop`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.lab.airflow_stack import AirflowStack
from include.slow_injection.lab.lab import Lab, Ports
from include.slow_injection.spec.loader import PROJECT_ROOT

DEMO = PROJECT_ROOT / ".demo"
DAG = "wave_lab-web"
DRILL_STEP = 25
APPROVAL = "validation.approval.uat_approval"


def stack() -> tuple[Lab, AirflowStack]:
    lab = Lab(DEMO / "lab", Ports())
    airflow = AirflowStack(DEMO / "airflow", PROJECT_ROOT / "include" / "waves", extra_env=lab.airflow_env(),
                           api_port=28080)
    return lab, airflow


def stop() -> int:
    lab, airflow = stack()
    airflow.stop()
    lab.stop()
    print("stopped the demo's Airflow, PostgreSQL and lab processes (by PID)")
    return 0


def _epoch(iso: str | None) -> float | None:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def _gate_line(verdict: dict) -> str:
    values = [m.get("value") for m in verdict.get("measurements", []) if "value" in m]
    oks = [m.get("state") or ("ok" if m.get("ok") else "failed") for m in verdict.get("measurements", []) if "ok" in m]
    shown = ", ".join("no data" if v is None else f"{v:.4g}" for v in values) or \
        ", ".join("ok" if ok == "ready" else ok for ok in oks)
    return f"{verdict['status'].upper():4} {verdict.get('condition', '')} [{shown}] {verdict.get('reason', '')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="demo", choices=["demo", "drill", "drill-slow", "stop"])
    args = parser.parse_args(argv)
    if args.command == "stop":
        return stop()
    drill, slow = args.command == "drill", args.command == "drill-slow"
    lab, airflow = stack()
    print("Slow Injection lab: real HAProxy (runtime API), real Prometheus, real HTTP traffic on loopback.")
    print("Kubernetes here is a STAND-IN, not a cluster: the real Kubernetes driver (official client through")
    print("the KubernetesHook) talks to a small API server whose simulated controllers roll Deployments out")
    print("and run the report CronJob every 10 s (a schedule real Kubernetes cannot express).\n")
    lab.stop()
    airflow.stop()
    print("starting the lab (blue, green, HAProxy, Prometheus, load generator) …", flush=True)
    lab.start()
    router = HAProxyRouter(HAProxyRuntime(str(lab.admin_socket)),
                           HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"))
    print(f"  traffic: {lab.frontend_url} (20 req/s) · Prometheus: {lab.prometheus_url} · "
          f"stand-in Kubernetes API: {lab.kube_url}")
    print("starting Airflow on PostgreSQL (api-server, scheduler, dag-processor, triggerer) …", flush=True)
    t0 = time.time()
    airflow.start()
    airflow.wait_for_dag(DAG)
    print(f"  Airflow is up in {time.time() - t0:.0f}s: {airflow.url}  (login admin / {airflow.password})")
    if slow:
        lab.set_fault("green", latency_ms=lab.BASE_LATENCY_MS * 1.4)
        print(f"DRILL: green answers 40 % slower ({lab.BASE_LATENCY_MS * 1.4:.0f} ms vs {lab.BASE_LATENCY_MS:.0f} ms) "
              "and never fails: only the parity analysis should catch it.")
    run_id = airflow.trigger(DAG)
    print(f"\ntriggered {DAG} through the REST API: run {run_id}")
    if drill:
        print(f"DRILL: green will start failing half its requests when it reaches {DRILL_STEP} % of traffic.")
    started = time.time()
    seen_weights, done, injected, restored = None, set(), None, None
    detected, answered = None, False
    while True:
        weights = router.get_weights()
        now = time.time()
        if weights != seen_weights:
            print(f"  {now - started:6.1f}s  HAProxy  blue {weights.blue:>3} % │ green {weights.green:>3} %", flush=True)
            seen_weights = weights
        if drill and injected is None and weights.green == DRILL_STEP:
            lab.set_fault("green", error_rate=0.5)
            injected = now
            print(f"  {now - started:6.1f}s  ⚡ fault injected into green: 50 % of its requests fail", flush=True)
        if injected and restored is None and weights.green == 0:
            restored = now
        tis = airflow.task_instances(DAG, run_id)
        if not answered and tis.get(APPROVAL, {}).get("state") == "awaiting_input":
            print(f"  {now - started:6.1f}s  {APPROVAL}: waiting for a human in the UI (Required actions); "
                  "the demo answers Promote as admin through the REST API", flush=True)
            airflow.answer_hitl(DAG, run_id, APPROVAL, "Promote")
            answered = True
        for task_id, ti in sorted(tis.items(), key=lambda kv: kv[1].get("end_date") or ""):
            if task_id in done or ti["state"] not in ("success", "failed"):
                continue
            done.add(task_id)
            if any(part in task_id for part in (".gate_", ".health_", ".wait_", ".jobs_", ".pods_", ".stress_",
                                                ".parity", ".data_in_sync", ".uat_approval")):
                verdict = airflow.xcom(DAG, run_id, task_id, "verdict") or {}
                if verdict:
                    print(f"  {now - started:6.1f}s  {task_id}: {_gate_line(verdict)}", flush=True)
                    if verdict.get("status") == "fail" and detected is None:
                        detected = verdict.get("finished_at")
            elif ti["state"] == "failed" or task_id.endswith(("wave_completed", "traffic_to_blue", "preflight",
                                                               "hand_over", "jobs_to_blue")):
                print(f"  {now - started:6.1f}s  {task_id}: {ti['state']}", flush=True)
        state = airflow.run_state(DAG, run_id)
        if state in ("success", "failed"):
            break
        time.sleep(0.2)
    print(f"\nrun {run_id}: {state.upper()} after {time.time() - started:.0f}s; HAProxy now {router.get_weights()}")
    reports = list((DEMO / "airflow" / "reports" / DAG).glob("*/report.md"))
    if reports:
        print(f"evaluation report: {max(reports, key=lambda p: p.stat().st_mtime)}")
    if drill and detected and restored:
        print(f"detection → 100 % blue: {restored - detected:.1f}s (gate poll 5s, Prometheus scrape 1s)")
    print(f"\nAirflow UI: {airflow.url}/dags/{DAG}  (user admin, password {airflow.password})")
    print("everything keeps running for you to look around; `make demo-stop` stops it all.")
    if slow:
        lab.clear_faults()
    ok = (state == "failed" and router.get_weights().green == 0) if (drill or slow) else state == "success"
    (DEMO / "last-demo.json").write_text(json.dumps({"run_id": run_id, "state": state, "drill": args.command}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
