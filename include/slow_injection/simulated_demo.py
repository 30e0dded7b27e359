"""`make demo-sim` / `make drill-sim`: the demo wave run end to end by Airflow (dag.test) on simulated drivers.

The parent process prints the plan, then follows the run as it changes the (simulated) world; a
child process runs Airflow with its own metadata DB under .demo/, its log in .demo/airflow.log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from include.slow_injection.spec.loader import PROJECT_ROOT

DEMO_DIR = PROJECT_ROOT / ".demo"
WAVE_FILE = PROJECT_ROOT / "include" / "waves" / "demo-shop.yaml"
WORLD = "demo"
DRILL_WEIGHT = 50


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(DEMO_DIR / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "SLOW_INJECTION_SIM_DIR": str(DEMO_DIR / "sim"),
            "SLOW_INJECTION_REPORTS_URL": f"file://{DEMO_DIR / 'reports'}",
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]),
        }
    )
    env.pop("SLOW_INJECTION_WAVES_DIR", None)
    return env


def run_child(drill: bool) -> None:
    """In the child: a fresh metadata DB, the seeded world, one dag.test() run; result to JSON."""
    from airflow.models import TaskInstance
    from airflow.utils import db
    from airflow.utils.session import create_session

    from include.slow_injection import demo_world
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.drivers.simulated import SimulatedWorld
    from include.slow_injection.spec import load_wave

    db.resetdb()
    SimulatedWorld(WORLD).reset(demo_world.checkout_breaks_at(DRILL_WEIGHT) if drill else demo_world.healthy_shop())
    dag = build_dag(load_wave(WAVE_FILE))
    (DEMO_DIR / "started").write_text(str(time.time()))
    run = dag.test(run_conf={"dry_run": False})
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)
            .all()
        )
        states = {ti.task_id: str(ti.state) if ti.state else None for ti in tis}
    (DEMO_DIR / "result.json").write_text(json.dumps({"state": str(run.state), "run_id": run.run_id, "tasks": states}))


def _describe(entry: dict) -> str:
    if entry["what"] == "set_weights":
        return f"router  {entry['service']:<9} blue {entry['blue']:>3} % │ green {entry['green']:>3} %"
    fields = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("at", "what", "env", "key", "copied_from"))
    return f"{entry['env']:<5}   {entry['key']:<28} {fields}"


def follow(child: subprocess.Popen, world_path: Path) -> None:
    seen_history, seen_notes, t0 = 0, 0, None
    while True:
        done = child.poll() is not None
        try:
            state = json.loads(world_path.read_text())
        except (OSError, ValueError):
            state = {}
        if t0 is None and (DEMO_DIR / "started").exists():
            t0 = float((DEMO_DIR / "started").read_text())
            print("\nrun started; changes as they happen (seconds since start):")
        history, notes = state.get("history", []), state.get("notifications", [])
        for entry in history[seen_history:]:
            print(f"  {entry['at'] - (t0 or entry['at']):6.1f}s  {_describe(entry)}")
        for note in notes[seen_notes:]:
            print(f"          ✉ [{note['event']}] {note['subject']}")
        seen_history, seen_notes = len(history), len(notes)
        if done:
            return
        time.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drill", action="store_true", help=f"green's checkout breaks at {DRILL_WEIGHT} %")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.drill)
        return 0

    from include.slow_injection.phases.plan_text import plan_lines
    from include.slow_injection.spec import load_wave

    print("Slow Injection demo: the demo wave, run by Airflow (dag.test) against SIMULATED drivers —")
    print("router, metrics, platform and notices are a JSON world in .demo/sim/, not real systems.\n")
    print("\n".join(plan_lines(load_wave(WAVE_FILE))))
    if args.drill:
        print(f"\nDRILL: green's checkout error ratio jumps to 20 % once it takes {DRILL_WEIGHT} % of traffic.")
    for stale in ("result.json", "started", f"sim/{WORLD}.json"):
        (DEMO_DIR / stale).unlink(missing_ok=True)
    (DEMO_DIR / "sim").mkdir(parents=True, exist_ok=True)
    log_path = DEMO_DIR / "airflow.log"
    print(f"\nstarting Airflow (metadata DB in .demo/airflow, log in {log_path.relative_to(PROJECT_ROOT)}) …")
    with open(log_path, "w") as log:
        cmd = [sys.executable, "-m", "include.slow_injection.simulated_demo", "--child"] + (
            ["--drill"] if args.drill else []
        )
        child = subprocess.Popen(cmd, env=demo_env(), stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        follow(child, DEMO_DIR / "sim" / f"{WORLD}.json")
    if child.returncode != 0 or not (DEMO_DIR / "result.json").exists():
        print(f"\nthe Airflow run did not finish; see {log_path}")
        return 1
    return summarise(json.loads((DEMO_DIR / "result.json").read_text()), args.drill)


def summarise(result: dict, drill: bool) -> int:
    tasks = result["tasks"]
    red = sorted(t for t, s in tasks.items() if s == "failed")
    print(f"\nDAG run {result['run_id']}: {result['state'].upper()}")
    print(
        f"  tasks: {sum(s == 'success' for s in tasks.values())} succeeded, "
        f"{sum(s == 'skipped' for s in tasks.values())} skipped, failed: {', '.join(red) or 'none'}"
    )
    reports = sorted((DEMO_DIR / "reports").glob(f"wave_demo-shop/{result['run_id'].replace(':', '_')}/report.md"))
    if reports:
        print(f"\nevaluation report ({reports[0].relative_to(PROJECT_ROOT)}):\n")
        print(reports[0].read_text())
    if drill:
        ok = (
            result["state"] == "failed"
            and tasks.get("rollback.traffic_to_blue") == "success"
            and tasks.get("rollback.wave_rolled_back") == "failed"
        )
        print(
            "drill: the failed gate rolled the wave back; all traffic is on blue."
            if ok
            else "drill: the wave was NOT rolled back as expected."
        )
    else:
        ok = result["state"] == "success"
        print(
            "demo: every gate passed; all traffic is on green and blue is retired."
            if ok
            else "demo: the wave did not complete."
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
