"""Waiting cost of gates on a real Airflow (LocalExecutor, PostgreSQL): one wave whose step has 20
metric gates baking 30 minutes. Once they wait, how many worker slots do they hold (goal 0: they wait
deferred, in the triggerer) and how much triggerer memory does each waiting gate cost?

Triggerer memory is the RSS of its whole process tree (psutil), idle (median of samples before the
run) against with every gate deferred (median of samples then), divided by the number deferred.
A gate first measures in its task for up to SLOW_INJECTION_GATE_INLINE_SECONDS (20 s) before it
defers: the time until all have deferred is printed too.

    make bench        # or: .venv/bin/python bench/waiting_cost.py --gates 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.error
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "bench")]

import psutil  # noqa: E402
import yaml  # noqa: E402
from bench_waves import healthy_world, waiting_wave  # noqa: E402
from record import Record  # noqa: E402
from stack import exit_cleanly_on_sigterm, start_patiently  # noqa: E402

GOAL_SLOTS = 0
GOAL_MB_PER_TRIGGER = 1.0  # 1000 waiting gates in 1 GB of triggerer
WAVE = "waiting"


def tree_rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def sampled_rss_mb(pid: int, samples: int = 5, every: float = 1.0) -> float:
    values = []
    for _ in range(samples):
        values.append(tree_rss_mb(pid))
        time.sleep(every)
    return statistics.median(values)


def main() -> int:
    record = Record()
    parser = argparse.ArgumentParser()
    parser.add_argument("--gates", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every gate to defer")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="bench-waiting-"))
    waves = root / "waves"
    waves.mkdir()
    (waves / f"{WAVE}.yaml").write_text(yaml.safe_dump(waiting_wave(WAVE, args.gates, WAVE), sort_keys=False))
    os.environ["SLOW_INJECTION_SIM_DIR"] = str(root / "sim")

    from include.slow_injection.drivers.simulated import SimulatedWorld
    from include.slow_injection.lab.airflow_stack import AirflowStack

    airflow = AirflowStack(root / "airflow", waves, extra_env={"SLOW_INJECTION_SIM_DIR": str(root / "sim")})
    dag_id = f"wave_{WAVE}"
    try:
        start_patiently(airflow)
        airflow.wait_for_dag(dag_id)
        triggerer = airflow.book.read()["triggerer"]
        idle_mb = sampled_rss_mb(triggerer, samples=10)
        SimulatedWorld(WAVE).reset(healthy_world(2))
        run_id = airflow.trigger(dag_id)
        started, gates, states = time.time(), {}, Counter()
        while time.time() - started < args.timeout:
            try:
                tis = airflow.task_instances(dag_id, run_id)
            except (OSError, urllib.error.URLError):  # an API server busy on a loaded machine: ask again
                time.sleep(2)
                continue
            gates = {t: ti for t, ti in tis.items() if ".gate_g" in t}
            if len(gates) == args.gates and all(ti["state"] == "deferred" for ti in gates.values()):
                break
            if any(ti["state"] in ("failed", "upstream_failed") for ti in tis.values()):
                raise RuntimeError(
                    f"the run failed before its gates waited: "
                    f"{ {t: ti['state'] for t, ti in tis.items() if ti['state'] == 'failed'} }"
                )
            time.sleep(2)
        all_deferred_s = round(time.time() - started, 1)
        time.sleep(5)  # let the triggerer settle with every trigger running
        waiting_mb = sampled_rss_mb(triggerer, samples=10)
        tis = airflow.task_instances(dag_id, run_id)
        states = Counter(ti["state"] for t, ti in tis.items() if ".gate_g" in t)
        all_states = Counter(ti["state"] for ti in tis.values())
        pool = airflow.get("/api/v2/pools/default_pool")
        airflow.end_unfinished_runs([dag_id])
    finally:
        airflow.stop()
    parallelism = int(airflow.env()["AIRFLOW__CORE__PARALLELISM"])
    busy = all_states.get("running", 0) + all_states.get("queued", 0)
    deferred = states.get("deferred", 0)
    slots_held = states.get("running", 0) + states.get("queued", 0)
    per_trigger = round((waiting_mb - idle_mb) / deferred, 2) if deferred else None
    figures = {
        "gates": args.gates,
        "gate_states": dict(states),
        "worker_slots_held_by_gates": slots_held,
        "executor_open_slots": parallelism - busy,
        "parallelism": parallelism,
        "pool": {k: pool.get(k) for k in ("slots", "open_slots", "running_slots", "queued_slots", "deferred_slots")},
        "seconds_until_all_deferred": all_deferred_s,
        "triggerer_idle_mb": round(idle_mb, 1),
        "triggerer_waiting_mb": round(waiting_mb, 1),
        "mb_per_waiting_gate": per_trigger,
        "goals": {"worker_slots_held_by_gates": GOAL_SLOTS, "mb_per_waiting_gate": f"≤ {GOAL_MB_PER_TRIGGER}"},
    }
    slots_met = deferred == args.gates and slots_held <= GOAL_SLOTS
    mb_met = per_trigger is not None and per_trigger <= GOAL_MB_PER_TRIGGER
    print(
        f"worker slots held while {args.gates} gates wait: {slots_held} (gates {dict(states)}; executor open "
        f"slots {parallelism - busy} of {parallelism}; all deferred {all_deferred_s} s after the trigger) "
        f"(goal {GOAL_SLOTS}: {'met' if slots_met else 'missed'})"
    )
    print(
        f"triggerer memory per waiting gate: {per_trigger} MB (tree RSS {idle_mb:.1f} MB idle → {waiting_mb:.1f} MB "
        f"with {deferred} waiting) (goal ≤ {GOAL_MB_PER_TRIGGER} MB: {'met' if mb_met else 'missed'})"
    )
    summary = {
        "command": f"python bench/waiting_cost.py --gates {args.gates}",
        "figures": figures,
    }
    record.append("waiting_cost", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
