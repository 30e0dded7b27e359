"""Parse time at scale: DagBag processing of dags/waves.py for N generated specs (default 100 specs ×
20 services) against a bare file that builds the same DAG shapes (same task ids, task groups, edges,
trigger rules; EmptyOperator; generated from the wave DAGs by bench/bare_dag.py).

Both are parsed alternately in this process, median of several runs after one warm-up each (the
dag-processor pre-imports a file's modules before it forks, so warm imports are what it sees).
When a goal is missed, one parse of waves.py is profiled (cProfile) and the top entries printed.

    make bench                       # or: .venv/bin/python bench/parse_time.py --specs 100 --services 20
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "bench")]

import yaml  # noqa: E402
from bare_dag import bare_source, dag_shape  # noqa: E402
from bench_waves import bench_wave  # noqa: E402
from record import Record  # noqa: E402

GOAL_RATIO, GOAL_SECONDS = 1.5, 2.0


def generate(folder: Path, specs: int, services: int) -> None:
    for i in range(specs):
        wave_id = f"bench-{i:03d}"
        (folder / f"{wave_id}.yaml").write_text(yaml.safe_dump(bench_wave(wave_id, services), sort_keys=False))


def write_bare(waves: Path, path: Path) -> None:
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_waves

    path.write_text(bare_source([dag_shape(build_dag(w)) for w in load_waves(waves).waves]))


def parse(path: Path) -> tuple[float, int, int]:
    from airflow.dag_processing.dagbag import DagBag

    start = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    elapsed = time.perf_counter() - start
    if bag.import_errors:
        raise RuntimeError(f"{path}: {bag.import_errors}")
    return elapsed, len(bag.dags), sum(len(d.tasks) for d in bag.dags.values())


def profile(path: Path, top: int = 20) -> str:
    from airflow.dag_processing.dagbag import DagBag

    profiler = cProfile.Profile()
    profiler.runcall(DagBag, dag_folder=str(path))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> int:
    record = Record()
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=int, default=100)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile one parse of waves.py even if goals are met")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    waves = home / "waves"
    waves.mkdir()
    generate(waves, args.specs, args.services)
    # the import timeout is raised so a slow parse is measured, not cut off (the dag-processor's is not)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "3600",
            "SLOW_INJECTION_WAVES_DIR": str(waves),
        }
    )
    from airflow.configuration import conf

    import_timeout = float(conf.get_default_value("core", "dagbag_import_timeout"))
    bare_file = home / "bare_waves.py"
    write_bare(waves, bare_file)
    wave_file = ROOT / "dags" / "waves.py"
    timings: dict[str, list[float]] = {"wave": [], "bare": []}
    counts = {}
    for i in range(args.runs + 1):  # the first round warms imports
        for kind, path in (
            (("wave", wave_file), ("bare", bare_file)) if i % 2 else (("bare", bare_file), ("wave", wave_file))
        ):
            elapsed, dags, tasks = parse(path)
            counts[kind] = (dags, tasks)
            if i:
                timings[kind].append(elapsed)
    if counts["wave"] != counts["bare"]:
        raise RuntimeError(f"bare file differs: wave {counts['wave']} vs bare {counts['bare']} (DAGs, tasks)")
    wave, bare = statistics.median(timings["wave"]), statistics.median(timings["bare"])
    ratio = wave / bare
    met = ratio <= GOAL_RATIO and wave < GOAL_SECONDS
    dags, tasks = counts["wave"]
    result = {
        "specs": args.specs,
        "services_per_spec": args.services,
        "dags": dags,
        "tasks": tasks,
        "median_s": round(wave, 3),
        "max_s": round(max(timings["wave"]), 3),
        "bare_median_s": round(bare, 3),
        "ratio": round(ratio, 2),
        "runs": args.runs,
        "goal": f"ratio ≤ {GOAL_RATIO} and waves.py < {GOAL_SECONDS} s",
        "met": met,
        "command": f"python bench/parse_time.py --specs {args.specs} --services {args.services} --runs {args.runs}",
    }
    print(
        f"parse time of dags/waves.py: {args.specs} specs × {args.services} services → {dags} DAGs, {tasks} tasks: "
        f"median {wave:.2f} s vs bare EmptyOperator file of the same shapes {bare:.2f} s → {ratio:.2f}× "
        f"({wave / max(dags, 1) * 1000:.0f} ms per wave; goal ≤ {GOAL_RATIO}× and < {GOAL_SECONDS:g} s: "
        f"{'met' if met else 'missed'})",
        flush=True,
    )
    if wave >= import_timeout:
        print(
            f"  waves.py takes longer than Airflow's default dagbag_import_timeout ({import_timeout:g} s): "
            f"a dag-processor with that default would refuse the file and load none of its waves"
        )
    result["default_import_timeout_s"] = import_timeout
    if not met or args.profile:
        report = profile(wave_file)
        print(report)
        result["profile_top"] = report
    record.append("parse_time", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
