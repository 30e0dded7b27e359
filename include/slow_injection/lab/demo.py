"""`make demo` / `make drill`: the lab wave on a real Airflow, moving real traffic through HAProxy.

Starts the lab (blue and green services, HAProxy, Prometheus, load, a real Kubernetes control plane) and
Airflow (API server, scheduler, dag-processor, triggerer on a throwaway PostgreSQL) under .demo/,
triggers wave_lab-web through the REST API, prints what happens, and leaves everything running for the
UI until `make demo-stop`.
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
    airflow = AirflowStack(
        DEMO / "airflow", PROJECT_ROOT / "include" / "waves", extra_env=lab.airflow_env(), api_port=28080
    )
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
    shown = ", ".join("no data" if v is None else f"{v:.4g}" for v in values) or ", ".join(
        "ok" if ok == "ready" else ok for ok in oks
    )
    return f"{verdict['status'].upper():4} {verdict.get('condition', '')} [{shown}] {verdict.get('reason', '')}"


def kubectl(lab: Lab) -> str:
    """The kubectl built with the control plane (same version), pointed at the lab's kubeconfig."""
    bin_dir = json.loads(lab.plane.state_file.read_text()).get("bin_dir", "")
    return f"{(Path(bin_dir) / 'kubectl').resolve()} --kubeconfig {lab.admin_kubeconfig}"


def report_runs(lab: Lab) -> str:
    """Which side ran which of the report CronJob's scheduled times (its Jobs still kept), as a check
    that each ran exactly once."""
    from kubernetes import client

    from include.slow_injection.drivers.kubernetes import SCHEDULED_AT
    from include.slow_injection.kubernetes.timestamps import from_rfc3339

    batch = client.BatchV1Api(lab.kube_client())
    sides = []
    for namespace in ("lab", "lab-fargate"):
        times = sorted(
            from_rfc3339(at).astimezone()
            for j in batch.list_namespaced_job(namespace).items
            if (at := (j.metadata.annotations or {}).get(SCHEDULED_AT))
        )
        sides.append(f"{namespace}: {', '.join(f'{t:%H:%M}' for t in times) or 'none'}")
    return "report CronJob's Jobs kept (scheduled times): " + " · ".join(sides)


class DataWatch:
    """The lab wave's data migrations as the demo shows them: an order written on the writable side at
    every poll (so replication carries something), and each migration's replication read at every
    traffic step (path, side taking writes, lag)."""

    def __init__(self, lab: Lab) -> None:
        import os

        from include.slow_injection.spec import load_wave

        # The demo reads the databases through the same Airflow connections as the wave.
        os.environ.update({k: v for k, v in lab.airflow_env().items() if k.startswith("AIRFLOW_CONN_LAB_")})
        self.lab, self.written = lab, 0
        self.migrations = load_wave(PROJECT_ROOT / "include" / "waves" / "lab-web.yaml").data_migration

    def write(self) -> None:
        try:
            self.lab.data.write_order(100_000 + self.written)
            self.written += 1
        except Exception:  # the fence just went up: the next poll writes on the other side
            pass

    def lines(self) -> list[str]:
        from include.slow_injection import registry

        out = []
        for m in self.migrations:
            try:
                status = registry.build("data_replication", m.replication.model_dump()).status()
                if status.path in ("forward", "reverse"):
                    lag = status.readiness(m.max_lag, m.max_lag_bytes, status.path).detail
                else:
                    lag = "no replication running"
                out.append(f"data {m.name}: {status.path}, writes on {status.writable}; {lag}")
            except Exception as err:
                out.append(f"data {m.name}: unreadable ({type(err).__name__}: {err})")
        return out

    def counts(self) -> str:
        rows = {env: self.lab.data.sql(env, "SELECT count(*) FROM orders")[0][0] for env in ("blue", "green")}
        return f"the demo wrote {self.written} orders during the run; orders now: blue {rows['blue']}, green {rows['green']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="demo", choices=["demo", "drill", "drill-slow", "stop"])
    args = parser.parse_args(argv)
    if args.command == "stop":
        return stop()
    drill, slow = args.command == "drill", args.command == "drill-slow"
    lab, airflow = stack()
    print("Slow Injection lab: real HAProxy (runtime API), real Prometheus, real HTTP traffic on loopback.")
    print("Kubernetes is a real control plane built from upstream (kube-apiserver with RBAC, controller-manager,")
    print("scheduler, etcd): real Deployment, ReplicaSet, CronJob and Job controllers. Nodes and pod status")
    print("come from kwok (no containers run; a Job's pod completes ~1 s after it starts) and Fargate")
    print("scheduling is emulated (a webhook and a scheduler giving each matched pod a node of its own).")
    print("The report CronJob runs every minute, so the job handover waits for a minute tick.\n")
    lab.stop()
    airflow.stop()
    print("starting the lab (blue, green, HAProxy, Prometheus, load generator, Kubernetes control plane) …", flush=True)
    t0 = time.time()
    lab.start()
    router = HAProxyRouter(
        HAProxyRuntime(str(lab.admin_socket)),
        HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
    )
    print(
        f"  lab up in {time.time() - t0:.0f}s · traffic: {lab.frontend_url} (20 req/s) · "
        f"Prometheus: {lab.prometheus_url}"
    )
    print(f"  Kubernetes API: {lab.kube_url} · blue: namespace lab (EC2 nodes), green: lab-fargate (Fargate profile)")
    print(
        "  Airflow's lab_kube connection: ServiceAccount airflow/slow-injection, bound to the RBAC that "
        "`slow-injection iam --only rbac` prints for the wave (nothing more)"
    )
    print(f"  look inside: {kubectl(lab)} get deploy,cronjob,jobs,pods -A -o wide")
    print("starting Airflow on PostgreSQL (api-server, scheduler, dag-processor, triggerer) …", flush=True)
    t0 = time.time()
    airflow.start()
    airflow.wait_for_dag(DAG)
    print(f"  Airflow is up in {time.time() - t0:.0f}s: {airflow.url}  (login admin / {airflow.password})")
    if slow:
        lab.set_fault("green", latency_ms=lab.BASE_LATENCY_MS * 1.4)
        print(
            f"DRILL: green answers 40 % slower ({lab.BASE_LATENCY_MS * 1.4:.0f} ms vs {lab.BASE_LATENCY_MS:.0f} ms) "
            "and never fails: only the parity analysis should catch it."
        )
    run_id = airflow.trigger(DAG)
    print(f"\ntriggered {DAG} through the REST API: run {run_id}")
    if drill:
        print(f"DRILL: green will start failing half its requests when it reaches {DRILL_STEP} % of traffic.")
    started = time.time()
    data = DataWatch(lab)
    seen_weights, done, injected, restored = None, set(), None, None
    detected, answered, waits = None, False, set()
    while True:
        weights = router.get_weights()
        now = time.time()
        if weights != seen_weights:
            print(
                f"  {now - started:6.1f}s  HAProxy  blue {weights.blue:>3} % │ green {weights.green:>3} %", flush=True
            )
            seen_weights = weights
            for line in data.lines():  # replication lag at every traffic step
                print(f"  {now - started:6.1f}s    {line}", flush=True)
        data.write()
        if drill and injected is None and weights.green == DRILL_STEP:
            lab.set_fault("green", error_rate=0.5)
            injected = now
            print(f"  {now - started:6.1f}s  ⚡ fault injected into green: 50 % of its requests fail", flush=True)
        if injected and restored is None and weights.green == 0:
            restored = now
        tis = airflow.task_instances(DAG, run_id)
        for task_id, ti in tis.items():  # a gate that waits for the report CronJob's minute tick
            if (
                task_id not in waits
                and ti["state"] in ("running", "deferred")
                and (task_id.endswith(".wait_first_run") or task_id.startswith("parallel_operation.jobs_"))
            ):
                waits.add(task_id)
                tick = lab.cluster.next_tick()
                print(
                    f"  {now - started:6.1f}s  {task_id}: waiting {tick - time.time():.0f} s for the report "
                    f"CronJob's next tick at {dt.datetime.fromtimestamp(tick):%H:%M:%S}",
                    flush=True,
                )
        if not answered and tis.get(APPROVAL, {}).get("state") == "awaiting_input":
            print(
                f"  {now - started:6.1f}s  {APPROVAL}: waiting for a human in the UI (Required actions); "
                "the demo answers Promote as admin through the REST API",
                flush=True,
            )
            airflow.answer_hitl(DAG, run_id, APPROVAL, "Promote")
            answered = True
        for task_id, ti in sorted(tis.items(), key=lambda kv: kv[1].get("end_date") or ""):
            if task_id in done or ti["state"] not in ("success", "failed"):
                continue
            done.add(task_id)
            if any(
                part in task_id
                for part in (
                    ".gate_",
                    ".health_",
                    ".wait_",
                    ".jobs_",
                    ".pods_",
                    ".stress_",
                    ".parity",
                    ".data_in_sync",
                    ".data_migrated_",
                    ".uat_approval",
                )
            ):
                verdict = airflow.xcom(DAG, run_id, task_id, "verdict") or {}
                if verdict:
                    print(f"  {now - started:6.1f}s  {task_id}: {_gate_line(verdict)}", flush=True)
                    if verdict.get("status") == "fail" and detected is None:
                        detected = verdict.get("finished_at")
            elif ti["state"] == "success" and any(
                part in task_id
                for part in ("start_replication_", "cut_over_writes_", "remove_replication_", "data_to_blue")
            ):
                result = airflow.xcom(DAG, run_id, task_id, "return_value") or {}
                changes = result.get("changes") or [
                    c for r in (result.get("migrations") or {}).values() for c in r["changes"]
                ]
                last = (
                    f"{changes[-1]['target']}: {changes[-1]['before']} → {changes[-1]['after']}"
                    if changes
                    else "no change"
                )
                print(f"  {now - started:6.1f}s  {task_id}: {len(changes)} change(s), last: {last[:160]}", flush=True)
                for line in data.lines():
                    print(f"  {now - started:6.1f}s    {line}", flush=True)
            elif ti["state"] == "failed" or task_id.endswith(
                ("wave_completed", "traffic_to_blue", "preflight", "hand_over", "jobs_to_blue")
            ):
                print(f"  {now - started:6.1f}s  {task_id}: {ti['state']}", flush=True)
        state = airflow.run_state(DAG, run_id)
        if state in ("success", "failed"):
            break
        time.sleep(0.2)
    print(f"\nrun {run_id}: {state.upper()} after {time.time() - started:.0f}s; HAProxy now {router.get_weights()}")
    print(report_runs(lab))
    print(data.counts())
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
