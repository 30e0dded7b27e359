"""The pure parts of the benchmarks (bench/): the generated specs and the bare EmptyOperator twin of a
wave DAG, which must have exactly the wave's graph for the comparisons to mean anything."""

from __future__ import annotations

import yaml

from bench.bare_dag import BARE_PREFIX, TWIN_PREFIX, bare_source, dag_shape, edges, longest_path, replay, twin_source
from bench.bench_waves import SMALLEST_INTERVAL, bench_wave, healthy_world, waiting_wave
from include.slow_injection.builders.factory import build_dag
from include.slow_injection.durations import parse_duration
from include.slow_injection.spec import load_wave


def _wave(tmp_path, data):
    path = tmp_path / f"{data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_wave(path)


def _bare_twin(shapes):
    namespace: dict = {}
    exec(compile(bare_source(shapes), "bare_waves.py", "exec"), namespace)
    return namespace


def test_bare_twin_has_the_wave_dags_graph(tmp_path):
    shape = dag_shape(build_dag(_wave(tmp_path, bench_wave("twin", 4, instant=True))))
    # the shape holds what makes the comparison fair: groups, several trigger rules, a setup and a teardown
    assert {t["trigger_rule"] for t in shape["tasks"].values()} >= {"all_success", "one_failed", "none_skipped"}
    assert any(t["teardown"] for t in shape["tasks"].values()) and any(t["setup"] for t in shape["tasks"].values())
    assert any("children" in c for c in shape["groups"]["children"])

    bare = _bare_twin([shape])[BARE_PREFIX + "wave_twin"]
    twin = dag_shape(bare)
    assert {type(t).__name__ for t in bare.tasks} == {"EmptyOperator"}
    assert twin["groups"] == shape["groups"]
    assert twin["tasks"] == shape["tasks"]
    assert edges(twin) == edges(shape) and len(edges(shape)) > len(shape["tasks"])


def test_bare_file_defines_one_dag_per_shape(tmp_path):
    shapes = [dag_shape(build_dag(_wave(tmp_path, bench_wave(f"w{n}", n)))) for n in (1, 3)]
    namespace = _bare_twin(shapes)
    assert {k for k in namespace if k.startswith(BARE_PREFIX)} == {"bare_wave_w1", "bare_wave_w3"}
    assert len(namespace["bare_wave_w3"].tasks) == len(shapes[1]["tasks"]) > len(shapes[0]["tasks"])


def test_longest_path_counts_only_the_tasks_that_ran():
    shape = {
        "tasks": {
            "a": {"downstream": ["b", "c"]},
            "b": {"downstream": ["c"]},
            "c": {"downstream": []},
            "d": {"downstream": []},
        }
    }
    assert longest_path(shape) == 3
    assert longest_path(shape, only={"a", "c"}) == 2
    assert longest_path(shape, only=set()) == 0


def test_instant_wave_waits_nowhere_but_the_spec_minimums(tmp_path):
    wave = _wave(tmp_path, bench_wave("instant", 4, instant=True))
    assert all(step.bake == 0 for s in wave.services for step in wave.steps_for(s))
    gates = [g for s in wave.services for g in s.gates] + wave.release_monitoring.gates
    assert {(g.bake, g.interval) for g in gates} == {(0.0, parse_duration(SMALLEST_INTERVAL))}
    assert all(h.consecutive_successes == 1 for s in wave.services for h in s.health_checks)
    assert wave.parallel_operation.blue_pods.window == 0
    # every query a gate asks has a value in the seeded world
    metrics = healthy_world(4)["metrics"]
    assert {g.query.replace("${service}", s.name) for s in wave.services for g in s.gates} <= set(metrics)


def test_waiting_wave_has_its_gates_side_by_side_at_one_long_step(tmp_path):
    wave = _wave(tmp_path, waiting_wave("waiting", 20, "w"))
    (svc,) = wave.services
    assert [s.weight for s in wave.steps_for(svc)] == [100] and wave.steps_for(svc)[0].bake == 1800
    assert len(svc.gates) == 20 and len({g.name for g in svc.gates}) == 20


def test_worker_twin_has_the_wave_dags_graph_with_tasks_that_reach_a_worker(tmp_path):
    dag = build_dag(_wave(tmp_path, bench_wave("twin", 4, instant=True)))
    shape = dag_shape(dag)
    namespace: dict = {}
    exec(compile(twin_source([shape], str(tmp_path / "replay.json")), "twin_waves.py", "exec"), namespace)
    twin_dag = namespace[TWIN_PREFIX + "wave_twin"]
    twin = dag_shape(twin_dag)
    assert twin["groups"] == shape["groups"] and twin["tasks"] == shape["tasks"]
    assert twin["kinds"] == shape["kinds"]
    # the wave's branches (plan_wave, the stage decisions) branch in the twin too; nothing else is empty
    assert "branch" in shape["kinds"].values()
    assert {type(t).__name__ for t in twin_dag.tasks} <= {"NoOp", "NoOpBranch", "EmptyOperator"}
    assert sum(k == "empty" for k in shape["kinds"].values()) == sum(
        type(t).__name__ == "EmptyOperator" for t in twin_dag.tasks
    )


def test_replay_keeps_branch_choices_and_the_outcomes_of_tasks_that_reached_a_worker():
    shape = {"kinds": {"b": "branch", "x": "task", "y": "task", "z": "task", "e": "empty"}}
    states = {"b": "success", "x": "skipped", "y": "skipped", "z": "success", "e": "success"}
    outcome = replay(shape, states, {"b": ["z", "x"]}, workers={"b", "x", "z"})
    # y was skipped by the branch (never reached a worker): the twin's scheduler skips it the same way
    assert outcome == {"b": {"followed": ["x", "z"]}, "x": {"state": "skipped"}}


def test_many_waves_share_no_workload_and_their_gates_wait_long_enough_to_defer(tmp_path):
    from bench.many_waves import INLINE_SECONDS, INTERVAL, many_wave

    workloads = []
    for k in range(3):
        data, world = many_wave(k, 5)
        wave = _wave(tmp_path, data)
        keys = {f"{s.workload.kind}/{s.workload.namespace}/{s.workload.name}" for s in wave.services}
        assert keys == set(world["workloads"]["blue"])  # its world runs exactly its own workloads on blue
        workloads.extend(keys)
        gates = [g for s in wave.services for g in s.gates] + wave.release_monitoring.gates
        assert {(g.interval, g.bake > INLINE_SECONDS) for g in gates} == {(INTERVAL, True)}
    assert len(workloads) == len(set(workloads)) == 15


def test_reading_delays_from_a_gates_readings():
    from bench.many_waves import reading_delays

    # read in the task until 15 s, next due at 20 s: the triggerer's first reading came 1.2 s late
    gap, handover = reading_delays([{"t": 21.2}, {"t": 26.5}, {"t": 31.6}], 5.0, 20.0)
    assert (round(gap, 2), round(handover, 2)) == (0.3, 1.2)
    assert reading_delays([{"t": 0.0}, {"t": 5.1}], 5.0, 20.0)[1] is None  # decided in the task


def test_a_rollback_drill_decided_on_no_data_never_counts_as_a_fault_detected() -> None:
    from bench.rollback_latency import figures, verdicts

    def drill(failed_on: str, fault_to_blue: float) -> dict:
        figures_of_a_drill = dict.fromkeys(
            ("fault_to_metric_s", "fault_to_gate_start_s", "fault_to_verdict_s", "fault_to_blue_s"), fault_to_blue
        )
        return {**figures_of_a_drill, "failed_on": failed_on, "verdict_to_blue_s": 0.05}

    figs = figures([drill("breach", 2.2), drill("no_data", 1.5), drill("breach", 2.4)])
    assert figs["fault_to_blue_s"] == {"n": 2, "median": 2.3, "min": 2.2, "max": 2.4}
    assert figs["verdict_to_blue_s"]["n"] == 3  # the move to blue was real whatever decided the gate
    met = {(v["figure"], v["stat"]): v["met"] for v in verdicts(figs, runs=3)}
    assert met[("fault_to_blue_s", "median")] is False and met[("verdict_to_blue_s", "median")] is True
