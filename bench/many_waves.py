"""Many waves at once on one real Airflow (LocalExecutor, PostgreSQL; include/slow_injection/lab/
airflow_stack.py): 10 waves of 5 services each on simulated drivers, triggered together.

Each wave has its own simulated world and its own namespace, so no two waves share a workload and no
lease blocks. The gates wait for real: traffic steps 50 % and 100 % baking 30 s, gates read every 5 s,
so each gate measures in its task for SLOW_INJECTION_GATE_INLINE_SECONDS (20 s) and then defers to the
triggerer, where 10 waves' gates wait side by side.

Reported: whether every run completed (goal: all), the wall time from the first trigger to the last
run's end, the worst delay of a gate reading behind its interval (from every gate verdict's readings:
the gap between consecutive readings minus the interval, and, for a gate that deferred, its first
reading in the triggerer after the last one in the task), and the triggerer's load: CPU % of its
process tree (psutil, sampled every second), the most triggers at once (the `trigger` table), and the
"async thread was blocked" warnings in its log.

    make bench        # or: .venv/bin/python bench/many_waves.py --waves 10 --services 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "bench")]

import psutil  # noqa: E402
import yaml  # noqa: E402
from bench_waves import bench_wave, healthy_world  # noqa: E402
from record import Record  # noqa: E402
from stack import exit_cleanly_on_sigterm, patiently, start_patiently  # noqa: E402

from include.slow_injection.reporting.timeline import epoch  # noqa: E402

STEPS = (50, 100)
BAKE = "30s"
INTERVAL = 5.0
INLINE_SECONDS = 20.0  # plugins/slow_injection_gates/sensors.py's default: then the gate defers
TIMED_GATES = {"errors", "release", "ready"}  # every one reads every INTERVAL
BLOCKED = "async thread was blocked"


def many_wave(k: int, services: int) -> tuple[dict, dict]:
    """Wave k's spec and its healthy world: its own namespace (no shared workload, no lease in the way)."""
    namespace = f"ns{k:02d}"
    wave = bench_wave(f"many-{k:02d}", services, world=f"many{k:02d}", instant=True)
    wave["traffic_steps"] = [{"weight": w, "bake": BAKE} for w in STEPS]
    for svc in wave["services"]:
        svc["workload"]["namespace"] = namespace
        for gate in svc["gates"]:
            gate.update(interval=f"{INTERVAL:g}s", bake=BAKE)
        for check in svc.get("health_checks", []):
            check.update(interval=f"{INTERVAL:g}s")
    for gate in wave["release_monitoring"]["gates"]:
        gate.update(interval=f"{INTERVAL:g}s", bake=BAKE)
    world = json.loads(json.dumps(healthy_world(services)).replace("/ns/", f"/{namespace}/"))
    return wave, world


def reading_delays(measurements: list[dict], interval: float, inline: float) -> tuple[float, float | None]:
    """(worst gap between consecutive readings minus the interval, the first reading's delay after the
    hand-over to the triggerer or None when the gate never deferred). Readings carry `t`, seconds since
    the gate started; a deferred gate's verdict holds only the triggerer's readings, which start after the
    task's last one, due at the last multiple of the interval within `inline`."""
    ts = [float(m["t"]) for m in measurements if "t" in m]
    if not ts:
        return 0.0, None
    worst_gap = max((b - a - interval for a, b in zip(ts, ts[1:], strict=False)), default=0.0)
    due = interval * math.floor(inline / interval)
    handover = ts[0] - due if ts[0] >= due - interval / 2 else None
    return max(worst_gap, 0.0), handover


class Sampler(threading.Thread):
    """Every second: the triggerer tree's CPU %, the triggers in the database, deferred task instances, and
    the running ones (each holds a worker slot) with how many of them are gates measuring in their task."""

    def __init__(self, pid: int, db_url: str) -> None:
        super().__init__(daemon=True)
        import sqlalchemy

        self.pid, self.engine = pid, sqlalchemy.create_engine(db_url)
        self.samples: list[dict] = []
        self.stopping = threading.Event()

    def _cpu_seconds(self) -> float:
        total = 0.0
        try:
            root = psutil.Process(self.pid)
            for p in (root, *root.children(recursive=True)):
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        return total

    def run(self) -> None:
        import sqlalchemy

        last_cpu, last_at = self._cpu_seconds(), time.monotonic()
        while not self.stopping.wait(1.0):
            cpu, now = self._cpu_seconds(), time.monotonic()
            try:
                with self.engine.connect() as db:
                    triggers = db.execute(sqlalchemy.text("select count(*) from trigger")).scalar()
                    deferred, running, gates = db.execute(
                        sqlalchemy.text(
                            "select count(*) filter (where state = 'deferred'), count(*) filter (where state = "
                            "'running'), count(*) filter (where state = 'running' and operator = 'GateSensor') "
                            "from task_instance"
                        )
                    ).one()
            except Exception:  # a busy database: skip this sample's counts
                triggers = deferred = running = gates = None
            # a tree member that ended between samples takes its CPU time along: never below 0
            self.samples.append(
                {
                    "cpu_pct": max(100 * (cpu - last_cpu) / (now - last_at), 0.0),
                    "triggers": triggers,
                    "deferred": deferred,
                    "running": running,
                    "running_gates": gates,
                }
            )
            last_cpu, last_at = cpu, now

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        self.engine.dispose()


def verdicts(db_url: str, dag_ids: list[str]) -> list[dict]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    with engine.connect() as db:
        rows = db.execute(
            sqlalchemy.text("select dag_id, task_id, value from xcom where key = 'verdict' and dag_id = any(:ids)"),
            {"ids": dag_ids},
        ).all()
    engine.dispose()
    found = []
    for dag_id, task_id, value in rows:
        value = json.loads(value) if isinstance(value, str | bytes) else value
        if isinstance(value, dict):
            found.append({"dag_id": dag_id, "task_id": task_id, **value})
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for every run to finish")
    parser.add_argument(
        "--inline-seconds",
        type=float,
        default=INLINE_SECONDS,
        help="SLOW_INJECTION_GATE_INLINE_SECONDS: how long a gate measures in its task (holding a worker slot) "
        "before it defers; the product's default is 20",
    )
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="bench-many-waves-"))
    (root / "waves").mkdir()
    os.environ["SLOW_INJECTION_SIM_DIR"] = str(root / "sim")

    from include.slow_injection.drivers.simulated import SimulatedWorld
    from include.slow_injection.lab.airflow_stack import AirflowStack

    dag_ids = []
    for k in range(args.waves):
        wave, world = many_wave(k, args.services)
        (root / "waves" / f"{wave['id']}.yaml").write_text(yaml.safe_dump(wave, sort_keys=False))
        SimulatedWorld(f"many{k:02d}").reset(world)
        dag_ids.append(f"wave_{wave['id']}")

    env = {
        "SLOW_INJECTION_SIM_DIR": str(root / "sim"),
        "SLOW_INJECTION_GATE_INLINE_SECONDS": f"{args.inline_seconds:g}",
    }
    airflow = AirflowStack(root / "airflow", root / "waves", extra_env=env)
    record = Record()
    runs: dict[str, str] = {}
    states: dict[str, str] = {}
    sampler = None
    try:
        start_patiently(airflow)
        for dag_id in dag_ids:
            airflow.wait_for_dag(dag_id, timeout=300)
        sampler = Sampler(airflow.book.read()["triggerer"], airflow.postgres.url)
        sampler.start()
        time.sleep(3)  # a few idle samples first
        airflow.token()  # once, before the threads share it
        started = time.time()
        with ThreadPoolExecutor(len(dag_ids)) as pool:  # together: each POST in its own thread
            runs = dict(zip(dag_ids, pool.map(lambda d: patiently(airflow.trigger, d), dag_ids), strict=True))
        triggered_in = time.time() - started
        print(f"triggered {len(runs)} waves in {triggered_in:.1f} s", flush=True)
        deadline = started + args.timeout
        while time.time() < deadline:
            for dag_id, run_id in runs.items():
                if states.get(dag_id) not in ("success", "failed"):
                    states[dag_id] = patiently(airflow.run_state, dag_id, run_id)
            if all(s in ("success", "failed") for s in states.values()):
                break
            time.sleep(2)
        ends = []
        for dag_id, run_id in runs.items():
            run = patiently(airflow.get, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            ends.append(epoch(run.get("end_date")))
        sampler.stop()
        found = verdicts(airflow.postgres.url, dag_ids)
        triggerer_log = airflow.root / "logs" / "triggerer.log"
        blocked = sum(BLOCKED in line for line in triggerer_log.open(errors="replace")) if triggerer_log.exists() else 0
    finally:
        if sampler is not None:
            sampler.stop()
        airflow.stop()

    completed = sum(s == "success" for s in states.values())
    wall = round(max(e for e in ends if e) - started, 1) if all(ends) else None
    gaps, handovers = [], []
    for v in found:
        if v.get("gate") in TIMED_GATES and v.get("status") != "skipped":
            gap, handover = reading_delays(v.get("measurements", []), INTERVAL, args.inline_seconds)
            gaps.append(gap)
            if handover is not None:
                handovers.append(handover)
    busy = [s for s in sampler.samples if s["triggers"]]
    cpu = [s["cpu_pct"] for s in busy]
    figures = {
        "waves": args.waves,
        "services_per_wave": args.services,
        "completed": completed,
        "goal": "every run completes",
        "met": completed == args.waves,
        "states": states,
        "triggered_in_s": round(triggered_in, 1),
        "wall_s": wall,
        "gate_verdicts": len(gaps),
        "deferred_gates": len(handovers),
        "worst_reading_gap_delay_s": round(max(gaps, default=0.0), 2),
        "median_reading_gap_delay_s": round(statistics.median(gaps), 2) if gaps else None,
        "worst_handover_delay_s": round(max(handovers), 2) if handovers else None,
        "median_handover_delay_s": round(statistics.median(handovers), 2) if handovers else None,
        "worst_reading_delay_s": round(max([*gaps, *handovers], default=0.0), 2),
        "triggerer_cpu_pct_max": round(max(cpu), 1) if cpu else None,
        "triggerer_cpu_pct_mean": round(statistics.mean(cpu), 1) if cpu else None,
        "max_triggers": max((s["triggers"] or 0 for s in sampler.samples), default=0),
        "max_deferred_tasks": max((s["deferred"] or 0 for s in sampler.samples), default=0),
        "blocked_warnings": blocked,
        "running_slot_seconds": sum(s["running"] or 0 for s in sampler.samples),
        "gate_slot_seconds": sum(s["running_gates"] or 0 for s in sampler.samples),
    }
    f = figures
    print(
        f"many waves: {f['waves']} waves × {f['services_per_wave']} services triggered together "
        f"(in {f['triggered_in_s']} s): {f['completed']}/{f['waves']} completed (goal: all: "
        f"{'met' if f['met'] else 'missed'}); wall time {f['wall_s']} s (steps {STEPS} baking {BAKE}, gates "
        f"every {INTERVAL:g} s; no goal given)"
    )
    print(
        f"  worst delay of a gate reading behind its {INTERVAL:g} s interval: {f['worst_reading_delay_s']} s "
        f"(no goal given) — between readings worst {f['worst_reading_gap_delay_s']} s, median "
        f"{f['median_reading_gap_delay_s']} s over {f['gate_verdicts']} gates; first reading in the triggerer "
        f"after the task's last, worst {f['worst_handover_delay_s']} s, median {f['median_handover_delay_s']} s "
        f"over {f['deferred_gates']} deferred gates"
    )
    print(
        f"  triggerer load (no goal given): CPU {f['triggerer_cpu_pct_mean']} % mean, "
        f"{f['triggerer_cpu_pct_max']} % max of one core while triggers ran; at most {f['max_triggers']} "
        f"triggers at once ({f['max_deferred_tasks']} deferred tasks); "
        f"{f['blocked_warnings']} 'async thread was blocked' warnings"
    )
    print(
        f"  worker slots: {f['running_slot_seconds']} slot-seconds of running tasks (parallelism "
        f"{airflow.env()['AIRFLOW__CORE__PARALLELISM']}), {f['gate_slot_seconds']} of them gates measuring in their "
        f"task before deferring ({args.inline_seconds:g} s each)"
    )
    summary = {
        "command": f"python bench/many_waves.py --waves {args.waves} --services {args.services} "
        f"--inline-seconds {args.inline_seconds:g}",
        "executor": f"LocalExecutor, parallelism {airflow.env()['AIRFLOW__CORE__PARALLELISM']}, PostgreSQL",
        "drivers": "simulated (one world per wave)",
        "waits": f"traffic steps {list(STEPS)} baking {BAKE}; gates every {INTERVAL:g} s, bake {BAKE}, "
        f"measured in the task for {args.inline_seconds:g} s before deferring",
        "figures": figures,
    }
    record.append("many_waves", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
