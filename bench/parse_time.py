"""Parse time of the wave DAG file for N generated specs (default 50 specs × 5 services).

Measures what the dag-processor does: DagBag processing of dags/waves.py, median of several runs
in this process, after one warm-up. Prints the figure and appends it to bench/results/parse_time.jsonl.

    make bench                       # or: .venv/bin/python bench/parse_time.py --specs 50 --services 5
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


def generate(folder: Path, specs: int, services: int) -> None:
    import yaml

    from tests.waves import metric_gate, sim

    for i in range(specs):
        svc = []
        for j in range(services):
            exposed = j % 2 == 1
            entry = {"name": f"svc-{j}", "exposure": "exposed" if exposed else "scheduled",
                     "workload": {"kind": "Deployment" if exposed else "CronJob", "namespace": "ns", "name": f"w{j}"},
                     "gates": [metric_gate("bench", "errors", 'err{service="${service}"}')]}
            if exposed:
                entry["router"] = sim("bench")
                entry["health_checks"] = [{"name": "ready", "check": sim("bench", target=f"svc-{j}")}]
            svc.append(entry)
        wave = {"id": f"bench-{i:03d}", "owner": "bench",
                "environments": {"blue": {"name": "b", "platform": sim("bench")},
                                 "green": {"name": "g", "platform": sim("bench")}},
                "traffic_steps": [{"weight": w, "bake": "1m"} for w in (5, 25, 50, 100)],
                "services": svc,
                "release_monitoring": {"gates": [metric_gate("bench", "release", "err")]}}
        (folder / f"bench-{i:03d}.yaml").write_text(yaml.safe_dump(wave, sort_keys=False))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=int, default=50)
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    waves = home / "waves"
    waves.mkdir()
    generate(waves, args.specs, args.services)
    os.environ.update({"AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "SLOW_INJECTION_WAVES_DIR": str(waves)})
    from airflow.dag_processing.dagbag import DagBag

    timings, dags, tasks = [], 0, 0
    for i in range(args.runs + 1):
        start = time.perf_counter()
        bag = DagBag(dag_folder=str(ROOT / "dags" / "waves.py"))
        elapsed = time.perf_counter() - start
        if bag.import_errors:
            print(bag.import_errors)
            return 1
        dags, tasks = len(bag.dags), sum(len(d.tasks) for d in bag.dags.values())
        if i:  # the first run warms imports
            timings.append(elapsed)
    median = statistics.median(timings)
    result = {"date": dt.date.today().isoformat(), "machine": f"{platform.node()} {os.cpu_count()} cpu",
              "specs": args.specs, "services_per_spec": args.services, "dags": dags, "tasks": tasks,
              "median_s": round(median, 3), "max_s": round(max(timings), 3), "runs": args.runs,
              "command": f"python bench/parse_time.py --specs {args.specs} --services {args.services}"}
    print(f"parse time of dags/waves.py: {args.specs} specs × {args.services} services → {dags} DAGs, "
          f"{tasks} tasks: median {median:.2f} s, max {max(timings):.2f} s over {args.runs} runs "
          f"({median / max(dags, 1) * 1000:.1f} ms per wave)")
    with open(ROOT / "bench" / "results" / "parse_time.jsonl", "a") as out:
        out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
