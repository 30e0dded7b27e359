"""End to end on a real Airflow and the lab: HAProxy traffic, Prometheus gates, automatic rollback, the
workloads on the lab's real Kubernetes control plane (the report CronJob ticks every minute).

Runs are triggered through REST API v2 as the UI does; traffic is real HTTP through HAProxy; Kubernetes
objects are read with the official client and the lab's kubeconfig (the one the `lab_kube` connection uses)."""

from __future__ import annotations

import datetime as dt
import json
import math
import time

import pytest
from kubernetes import client

from include.slow_injection.drivers.kubernetes import SCHEDULED_AT
from include.slow_injection.lab.kube.fargate import COMPUTE_TYPE, SCHEDULER
from include.slow_injection.ports import Weights
from tests.support.e2e_runs import problems

pytestmark = pytest.mark.e2e
DAG = "wave_e2e-web"
GATES_DAG = "wave_e2e-gates"  # the web service alone: scenarios about gates need no job handover's minute ticks
SETTLE = 1.0  # requests already in flight when the weights change


def tolerance(weight: int, served: int) -> float:
    """±5 percentage points, widened to a 99.9 % binomial bound where the sample is small (HAProxy's
    round-robin split is exact; the slack covers requests in flight and per-second bucketing)."""
    p = weight / 100
    return max(5.0, 330 * math.sqrt(p * (1 - p) / served))


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def load_between(lab, start: float, end: float) -> dict[str, int]:
    seconds = json.loads(lab.lab.load_file.read_text())["seconds"]
    total: dict[str, int] = {}
    for second, counts in seconds.items():
        if math.ceil(start) <= int(second) and int(second) + 1 <= end:
            for key, n in counts.items():
                total[key] = total.get(key, 0) + n
    return total


def prometheus_stopper(lab):
    """Stops Prometheus the first time green takes traffic (during the first step's gates)."""
    stopped: list[bool] = []

    def stop_metrics(w: Weights) -> None:
        if w.green == 5 and not stopped:
            lab.lab.stop_prometheus()
            stopped.append(True)

    return stopped, stop_metrics


def follow(lab, run_id: str, dag: str = DAG, on_weights=None) -> tuple[str, list[Weights]]:
    seen: list[Weights] = []

    def poll() -> None:
        w = lab.router.get_weights()
        if not seen or seen[-1] != w:
            seen.append(w)
            if on_weights:
                on_weights(w)

    state = lab.airflow.wait_for_run(dag, run_id, timeout=600, on_poll=poll)  # two minute ticks of the report job
    poll()
    return state, seen


def test_every_gate_passes_and_traffic_moves_to_green_in_steps(lab) -> None:
    run_id = lab.airflow.trigger(DAG)
    state, seen = follow(lab, run_id)
    tis = lab.airflow.task_instances(DAG, run_id)
    assert state == "success", problems(tis, lab)
    assert seen[0] == Weights(100, 0) and seen[-1] == Weights(0, 100)
    assert [w.green for w in seen] == [0, 5, 25, 50, 100]
    for step, weight in (("step1_5pct", 5), ("step2_25pct", 25), ("step3_50pct", 50), ("step4_100pct", 100)):
        set_end = epoch(tis[f"gradual_transition.web.{step}.set_traffic"]["end_date"])
        decide_start = epoch(tis[f"gradual_transition.web.{step}.decide"]["start_date"])
        counts = load_between(lab, set_end + SETTLE, decide_start)
        served = counts.get("blue", 0) + counts.get("green", 0)
        assert served >= 150, (step, counts)
        share = 100 * counts.get("green", 0) / served
        seconds = json.loads(lab.lab.load_file.read_text())["seconds"]
        detail = {k: v for k, v in seconds.items() if set_end - 3 <= int(k) <= decide_start + 3}
        assert abs(share - weight) <= tolerance(weight, served), (
            f"{step}: green served {share:.1f} % of {served} requests, wanted "
            f"{weight} % (set {set_end:.1f}, decide {decide_start:.1f}: {detail})"
        )
    verdict = {
        t: lab.airflow.xcom(DAG, run_id, t, "verdict")
        for t in ("validation.checks.stress_green-load", "validation.checks.data_in_sync", "validation.parity.parity")
    }
    assert all(v["status"] == "pass" for v in verdict.values()), verdict
    assert verdict["validation.checks.stress_green-load"]["stats"]["requests"] >= 50
    assert "public.orders" in verdict["validation.checks.data_in_sync"]["reason"]
    assert {m["name"]: m["classification"] for m in verdict["validation.parity.parity"]["metrics"]} == {
        "mean-latency": "Pass",
        "error-ratio": "Pass",
    }
    run_start = epoch(tis["preparation.plan_wave"]["start_date"])
    counts = load_between(lab, run_start, time.time())
    assert counts.get("blue_5xx", 0) == 0 and counts.get("green_5xx", 0) == 0, counts
    assert suspended(lab, "lab", "report") and not suspended(lab, "lab-fargate", "report")  # the job moved
    blue_times, green_times = scheduled_times(lab, "lab"), scheduled_times(lab, "lab-fargate")
    assert green_times and not blue_times & green_times, (blue_times, green_times)  # each tick ran once
    apps, core = client.AppsV1Api(lab.lab.kube_client()), client.CoreV1Api(lab.lab.kube_client())
    assert apps.read_namespaced_deployment("web", "lab").spec.replicas == 0  # blue retired
    green_web = apps.read_namespaced_deployment("web", "lab-fargate")
    assert green_web.status.ready_replicas == 2 and green_web.metadata.labels["compute"] == "fargate"
    pods = core.list_namespaced_pod("lab-fargate", label_selector="app=web").items
    fargate_nodes = {n.metadata.name for n in core.list_node(label_selector=f"{COMPUTE_TYPE}=fargate").items}
    assert len(pods) == 2 and all(
        p.spec.scheduler_name == SCHEDULER and p.spec.node_name in fargate_nodes for p in pods
    ), [(p.spec.scheduler_name, p.spec.node_name) for p in pods]


def test_a_fault_injected_at_the_25_percent_step_rolls_back_to_blue(lab) -> None:
    injected = []

    def inject(w: Weights) -> None:
        if w.green == 25 and not injected:
            lab.lab.set_fault("green", error_rate=0.6)
            injected.append(time.time())

    run_id = lab.airflow.trigger(DAG)
    state, seen = follow(lab, run_id, on_weights=inject)
    tis = lab.airflow.task_instances(DAG, run_id)
    assert injected, f"the wave never reached the 25 % step: {seen} {problems(tis, lab)}"
    assert state == "failed"
    assert seen[-1] == Weights(100, 0)
    assert 50 not in [w.green for w in seen]
    assert tis["gradual_transition.web.step2_25pct.gate_error-ratio"]["state"] == "failed"
    assert tis["gradual_transition.web.step2_25pct.rollback_requested"]["state"] == "success"
    assert tis["rollback.restore_blue_workloads"]["state"] == "success"
    assert tis["rollback.traffic_to_blue"]["state"] == "success"
    assert tis["rollback.jobs_to_blue"]["state"] == "success"
    assert tis["rollback.wave_rolled_back"]["state"] == "failed"
    assert not suspended(lab, "lab", "report") and suspended(lab, "lab-fargate", "report")  # the job is back


def test_green_forty_percent_slower_but_error_free_is_caught_by_parity_alone(lab) -> None:
    lab.lab.set_fault("green", latency_ms=lab.lab.BASE_LATENCY_MS * 1.4)
    run_id = lab.airflow.trigger(GATES_DAG)
    state, seen = follow(lab, run_id, dag=GATES_DAG)
    tis = lab.airflow.task_instances(GATES_DAG, run_id)
    assert state == "failed" and seen == [Weights(100, 0)], (seen, problems(tis, lab))
    stress = lab.airflow.xcom(GATES_DAG, run_id, "validation.checks.stress_green-load", "verdict")
    assert stress["status"] == "pass" and stress["stats"]["p95_ms"] < 250  # the threshold gate is happy
    parity = lab.airflow.xcom(GATES_DAG, run_id, "validation.parity.parity", "verdict")
    latency = next(m for m in parity["metrics"] if m["name"] == "mean-latency")
    assert parity["status"] == "fail" and latency["classification"] == "High", parity
    assert 0.25 < latency["relative_effect"] < 0.6, latency
    assert tis["rollback.traffic_to_blue"]["state"] == "success"
    assert tis["gradual_transition.web.step1_5pct.set_traffic"]["state"] == "skipped"


def suspended(lab, namespace: str, name: str) -> bool:
    return bool(client.BatchV1Api(lab.lab.kube_client()).read_namespaced_cron_job(name, namespace).spec.suspend)


def scheduled_times(lab, namespace: str) -> set[str]:
    """The scheduled times the report CronJob's Jobs (those still kept) ran in a namespace."""
    jobs = client.BatchV1Api(lab.lab.kube_client()).list_namespaced_job(namespace).items
    return {(j.metadata.annotations or {}).get(SCHEDULED_AT) for j in jobs} - {None}


def test_prometheus_down_during_a_gate_never_promotes_and_rolls_back(lab) -> None:
    stopped, stop_metrics = prometheus_stopper(lab)
    run_id = lab.airflow.trigger(GATES_DAG)
    state, seen = follow(lab, run_id, dag=GATES_DAG, on_weights=stop_metrics)
    tis = lab.airflow.task_instances(GATES_DAG, run_id)
    assert stopped and state == "failed", problems(tis, lab)
    assert [w.green for w in seen] == [0, 5, 0]  # never went past the step where metrics vanished
    assert tis["gradual_transition.web.step1_5pct.decide"]["state"] == "success"
    assert tis["rollback.traffic_to_blue"]["state"] == "success"
    assert tis["gradual_transition.web.step2_25pct.set_traffic"]["state"] == "skipped"


def test_prometheus_down_with_hold_policy_holds_at_the_step(lab) -> None:
    stopped, stop_metrics = prometheus_stopper(lab)
    run_id = lab.airflow.trigger("wave_e2e-hold")
    state, seen = follow(lab, run_id, dag="wave_e2e-hold", on_weights=stop_metrics)
    tis = lab.airflow.task_instances("wave_e2e-hold", run_id)
    assert stopped and state == "failed"
    assert seen[-1] == Weights(95, 5)  # holds where it stopped, no rollback
    assert tis["wave_held"]["state"] == "failed"
    assert tis["rollback.traffic_to_blue"]["state"] == "skipped"


def test_dry_run_leaves_haproxy_untouched(lab) -> None:
    run_id = lab.airflow.trigger(DAG, conf={"dry_run": True})
    state, seen = follow(lab, run_id)
    assert state == "success", problems(lab.airflow.task_instances(DAG, run_id), lab)
    assert seen == [Weights(100, 0)]
