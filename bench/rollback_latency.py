"""Rollback latency in the lab, at the metrics' floor: fault → gate verdict → 100 % blue, over many drills on
one running Airflow (scheduler, triggerer, LocalExecutor on PostgreSQL) with real HAProxy and Prometheus.

Each drill triggers the lab's web service wave (the lab wave with its web service alone and no validation
phase: what is measured starts at the first traffic step), injects a 50 % error rate into green the moment
HAProxy shows green > 0, and polls every 0.05 s: HAProxy's weights (through its admin socket) and the error
gate's own query on Prometheus. Per drill:

- fault → metric: Prometheus first answers the gate's query above its threshold (the floor: the scrape
  interval, and two samples of the 5xx series inside the query's rate window);
- fault → verdict: the failed gate's verdict (`finished_at`, stamped by the gate as it decided);
- verdict → 100 % blue: the first HAProxy read of 0 % green after the verdict; with the circuit breaker
  (gates/breaker.py) the gate moves the router itself, without the rollback group's scheduler hops;
- fault → 100 % blue.

The main series runs the gates at a 1 s interval (--interval), the comparison at 5 s (--compare-interval,
the shipped lab wave's). Goals (issue 18): verdict → 100 % blue median ≤ 1 s and max ≤ 2 s; fault → 100 % blue
median ≤ 4 s. Printed with met/missed and appended to bench/results/rollback_latency.jsonl.

    make bench        # or: .venv/bin/python bench/rollback_latency.py --drills 10 --compare-drills 3
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "bench")]

import yaml  # noqa: E402
from record import RESULTS, Record  # noqa: E402

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime  # noqa: E402
from include.slow_injection.durations import parse_duration  # noqa: E402
from include.slow_injection.lab.airflow_stack import AirflowStack  # noqa: E402
from include.slow_injection.lab.lab import Lab, Ports  # noqa: E402
from include.slow_injection.ports import Weights  # noqa: E402
from include.slow_injection.queries import render_query  # noqa: E402
from include.slow_injection.reporting.timeline import epoch  # noqa: E402

GATE = "error-ratio"
FAULT = 0.5  # share of green's requests that fail once injected
LOAD_RATE = 50.0  # requests/s through HAProxy: green gets 2.5/s at the 5 % step
POLL = 0.05
GOALS = {  # figure → (statistic, limit in s)
    "verdict_to_blue_s": [("median", 1.0), ("max", 2.0)],
    "fault_to_blue_s": [("median", 4.0)],
}


def bench_wave(wave_id: str, interval: str) -> dict[str, Any]:
    """The lab wave's web service alone on the haproxy router, no validation phase, no data migration, its gates
    every `interval`."""
    wave = yaml.safe_load((ROOT / "include" / "waves" / "lab-web.yaml").read_text())
    wave["id"] = wave_id
    web = next(s for s in wave["services"] if s["name"] == "web")
    for gate in web["gates"]:
        gate["interval"] = interval
    # HAProxy written directly, no data migration: the figures are the gates' and the rollback's own, not the
    # lab's stand-in Ingress controller's lag, and a data_migration would disarm the circuit breaker
    web["router"] = {
        "type": "haproxy",
        "connection": "lab_haproxy",
        "backend": "web",
        "blue_server": "blue",
        "green_server": "green",
    }
    wave.pop("data_migration", None)
    wave["services"], wave["validation"] = [web], {}
    return wave


def rate_window(query: str) -> float:
    """The longest range selector in a PromQL query ([15s] → 15)."""
    return max(parse_duration(w) for w in re.findall(r"\[(\d+[smh])\]", query))


class Prometheus:
    def __init__(self, url: str, query: str) -> None:
        self.url = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})

    def value(self) -> float | None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as reply:
                result = json.load(reply)["data"]["result"]
            return float(result[0]["value"][1]) if result else None
        except (OSError, ValueError, KeyError):
            return None


def drill(lab: Lab, airflow: AirflowStack, router: HAProxyRouter, dag: str, prom: Prometheus, threshold: float) -> dict:
    lab.clear_faults()
    router.set_weights(Weights(100, 0))
    lab.reset_platform()
    airflow.forget_wave_states()
    run_id = airflow.trigger(dag)
    injected = visible = restored = None
    started = time.time()
    while restored is None and time.time() - (injected or started) < 240:
        green = router.get_weights().green
        now = time.time()
        if injected is None and green > 0:
            lab.set_fault("green", error_rate=FAULT)
            injected = time.time()
        elif injected is not None:
            if green == 0:
                restored = now
            if visible is None and (v := prom.value()) is not None and v >= threshold:
                visible = time.time()
        time.sleep(POLL)
    state = airflow.wait_for_run(dag, run_id, timeout=300)
    tis = airflow.task_instances(dag, run_id)
    failed = sorted(t for t, ti in tis.items() if t.endswith(f".gate_{GATE}") and ti["state"] == "failed")
    verdict = airflow.xcom(dag, run_id, failed[0], "verdict") if failed else None
    verdict = verdict or {}
    decided, moved = verdict.get("finished_at"), verdict.get("breaker") or {}
    rollback_start = epoch(tis.get("rollback.restore_blue_workloads", {}).get("start_date"))
    breach = next((m["t"] for m in verdict.get("measurements", []) if m.get("outcome") == "breach"), None)
    counted = [m.get("outcome") for m in verdict.get("measurements", []) if m.get("outcome") in ("breach", "no_data")]

    def since(a: float | None, b: float | None) -> float | None:
        return round(a - b, 2) if a is not None and b is not None else None

    return {
        "run_id": run_id,
        "state": state,
        "gate": failed[0] if failed else None,
        "failed_on": counted[-1] if counted else None,  # a drill decided on no data did not measure the fault
        "fault_to_metric_s": since(visible, injected),
        "fault_to_gate_start_s": since(verdict.get("started_at"), injected),
        "fault_to_breach_reading_s": since((verdict.get("started_at") or 0) + breach, injected) if breach else None,
        "fault_to_verdict_s": since(decided, injected),
        "verdict_to_breaker_s": since(moved.get("at"), decided),
        "verdict_to_blue_s": since(restored, decided),
        "fault_to_blue_s": since(restored, injected),
        "breaker": moved.get("changed"),
        "rollback_started_after_breaker_s": since(rollback_start, moved.get("at")),
    }


def prime_green_series(router: HAProxyRouter, scrape_s: float) -> None:
    """Send green a little traffic first, so its request series exists before the first drill. Otherwise the
    first drill's gate reads green before Prometheus holds two samples of a brand-new series: no data, which
    fails the gate (on_no_data: fail), and that drill measures nothing about the fault."""
    router.set_weights(Weights(95, 5))
    time.sleep(3 * scrape_s + 1)
    router.set_weights(Weights(100, 0))


def figures(runs: list[dict]) -> dict[str, dict[str, float | None]]:
    out = {}
    for name in (
        "fault_to_metric_s",
        "fault_to_gate_start_s",
        "fault_to_verdict_s",
        "verdict_to_blue_s",
        "fault_to_blue_s",
    ):
        judged = [r for r in runs if r.get("failed_on") == "breach"] if name.startswith("fault_to") else runs
        values = [r[name] for r in judged if r.get(name) is not None]
        out[name] = {
            "n": len(values),
            "median": round(statistics.median(values), 2) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }
    return out


def verdicts(figs: dict, runs: int) -> list[dict[str, Any]]:
    """Each goal with the figure it is judged on; a drill without a figure misses it."""
    out = []
    for name, limits in GOALS.items():
        for stat, limit in limits:
            value = figs[name][stat]
            met = value is not None and figs[name]["n"] == runs and value <= limit
            out.append({"figure": name, "stat": stat, "value": value, "goal": f"≤ {limit:g} s", "met": met})
    return out


def run_series(lab, airflow, router, dag, prom, threshold, drills: int, label: str) -> list[dict]:
    runs = []
    for i in range(drills):
        result = drill(lab, airflow, router, dag, prom, threshold)
        print(f"{label} drill {i + 1}/{drills}: {result}", flush=True)
        runs.append(result)
    return runs


def line(name: str, f: dict) -> str:
    return f"{name.removesuffix('_s').replace('_', ' ')}: median {f['median']} s, min {f['min']} s, max {f['max']} s (n={f['n']})"


def last_without_breaker() -> str | None:
    """The last figure bench/results holds from before the circuit breaker (gates every 5 s, the rollback
    group moving traffic)."""
    path = RESULTS / "rollback_latency.jsonl"
    older = [json.loads(row) for row in path.read_text().splitlines() if row.strip()] if path.exists() else []
    older = [r for r in older if "figures" not in r and r.get("median_s") is not None and not r.get("variant")]
    if not older:
        return None
    r = older[-1]
    return (
        f"bench/results, {r['date']}: detection → 100 % blue median {r['median_s']} s, max {r['max_s']} s "
        f"over {r['measured']} drills, gates every {r['gate_poll_s']:g} s"
    )


def main() -> int:
    record = Record()
    parser = argparse.ArgumentParser()
    parser.add_argument("--drills", type=int, default=10, help="drills with the gates at --interval")
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--compare-drills", type=int, default=3, help="drills at --compare-interval (0: none)")
    parser.add_argument("--compare-interval", default="5s")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    lab = Lab(root / "lab", Ports.free(), load_rate=LOAD_RATE, route_controller=None)  # HAProxy has one writer
    waves = root / "waves"
    waves.mkdir()
    series = {"main": ("bench-rollback-main", args.interval, args.drills)}
    if args.compare_drills:
        series["compare"] = ("bench-rollback-compare", args.compare_interval, args.compare_drills)
    for wave_id, interval, _ in series.values():
        (waves / f"{wave_id}.yaml").write_text(yaml.safe_dump(bench_wave(wave_id, interval), sort_keys=False))
    gate = next(g for g in bench_wave("x", args.interval)["services"][0]["gates"] if g["name"] == GATE)
    query, threshold = render_query(gate["query"], "web", "green"), float(gate["threshold"])
    scrape_s, window_s = parse_duration(lab.scrape_interval), rate_window(query)
    airflow = AirflowStack(root / "airflow", waves, extra_env=lab.airflow_env())
    results: dict[str, list[dict]] = {}
    try:
        lab.start()
        router = HAProxyRouter(
            HAProxyRuntime(str(lab.admin_socket)),
            HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
        )
        prom = Prometheus(lab.prometheus_url, query)
        airflow.start()
        for wave_id, _, _ in series.values():
            airflow.wait_for_dag(f"wave_{wave_id}")
        prime_green_series(router, scrape_s)
        for name, (wave_id, interval, drills) in series.items():
            results[name] = run_series(lab, airflow, router, f"wave_{wave_id}", prom, threshold, drills, interval)
    finally:
        airflow.stop()
        lab.stop()

    main_runs = results["main"]
    figs = figures(main_runs)
    goals = verdicts(figs, len(main_runs))
    floor = (
        f"metrics floor: Prometheus scrape every {scrape_s:g} s, the gate's rate window {window_s:g} s "
        f"(rate() needs two samples in it: one scrape after the first error once green's 5xx series exists, "
        f"two for a new series), then one gate interval ({parse_duration(args.interval):g} s) to read it; "
        f"measured as fault → metric below"
    )
    print(
        f"\nrollback latency over {len(main_runs)} drills, gates every {args.interval} ({lab.load_rate:g} req/s, {FAULT:.0%} of green failing):"
    )
    print(f"  {floor}")
    for name, f in figs.items():
        print(f"  {line(name, f)}")
    for g in goals:
        print(
            f"  goal {g['figure'].removesuffix('_s').replace('_', ' ')} {g['stat']} {g['goal']}: {g['value']} s → {'met' if g['met'] else 'missed'}"
        )
    summary: dict[str, Any] = {
        "command": " ".join(["python", "bench/rollback_latency.py", *sys.argv[1:]]),
        "variant": "circuit breaker (gates/breaker.py); lab web service alone, no validation phase",
        "gate_interval_s": parse_duration(args.interval),
        "scrape_interval_s": scrape_s,
        "rate_window_s": window_s,
        "load_rate": lab.load_rate,
        "fault_error_rate": FAULT,
        "drills": len(main_runs),
        "figures": figs,
        "goals": goals,
        "met": all(g["met"] for g in goals),
        "runs": main_runs,
    }
    if "compare" in results:
        cmp_figs = figures(results["compare"])
        print(f"\nfor comparison, {len(results['compare'])} drills with the gates every {args.compare_interval}:")
        for name, f in cmp_figs.items():
            print(f"  {line(name, f)}")
        if before := last_without_breaker():
            print(f"  before the circuit breaker ({before})")
        summary["compare"] = {
            "gate_interval_s": parse_duration(args.compare_interval),
            "figures": cmp_figs,
            "runs": results["compare"],
        }
    print(f"\nall goals {'met' if summary['met'] else 'NOT met'}")
    record.append("rollback_latency", summary)
    measured = all(r["verdict_to_blue_s"] is not None for runs in results.values() for r in runs)
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
