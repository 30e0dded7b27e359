"""The DAG files: every wave becomes a DAG that reads like the slow-injection process."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.standard.operators.branch import BaseBranchOperator

from include.slow_injection.phases import PHASES
from include.slow_injection.tasks.decision import StageDecision
from include.slow_injection.tasks.operators import PlatformStep, Preflight, SetTraffic
from include.slow_injection.tasks.rollback_steps import RollbackTraffic, RollbackWorkloads
from slow_injection_gates.sensors import GateSensor
from tests.support.waves import bag_for, small_wave, two_good_one_broken, write

SIDE_EFFECTING = (SetTraffic, PlatformStep, RollbackTraffic, RollbackWorkloads, Preflight)


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return bag_for()


def test_no_import_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    assert "wave_demo-shop" in bag.dags


def waves(bag: DagBag) -> list:
    return [d for d in bag.dags.values() if d.dag_id.startswith("wave_")]


def test_every_wave_has_the_eight_phase_groups_and_a_rollback_group(bag: DagBag) -> None:
    for dag in waves(bag):
        top = set(dag.task_group.children)
        assert set(PHASES) <= top and "rollback" in top, top
        assert PHASES == (
            "preparation",
            "migrate_scheduled_jobs",
            "parallel_operation",
            "validation",
            "gradual_transition",
            "full_transition",
            "release_monitoring",
            "post_release",
        )


def test_dag_policies(bag: DagBag) -> None:
    for dag in waves(bag):
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert "slow-injection" in dag.tags
        assert dag.params["dry_run"] is False or dag.params["dry_run"] is True
        for task in dag.tasks:
            if isinstance(task, SIDE_EFFECTING):
                assert task.retries >= 2, task.task_id
            if isinstance(task, GateSensor):
                assert task.retries == 0 and task.deferrable, task.task_id


def test_every_gate_is_followed_by_a_branch_that_can_reach_rollback(bag: DagBag) -> None:
    dag = bag.dags["wave_demo-shop"]
    gates = [t for t in dag.tasks if isinstance(t, GateSensor)]
    assert gates
    for gate in gates:
        downstream = [dag.get_task(t) for t in gate.downstream_task_ids]
        (decide,) = [t for t in downstream if isinstance(t, BaseBranchOperator)]
        assert decide.trigger_rule == "none_skipped"
        markers = {dag.get_task(t).task_id.rsplit(".", 1)[-1] for t in decide.downstream_task_ids}
        assert {"rollback_requested", "hold_requested"} <= markers


def test_validation_phase_ends_in_a_branch(bag: DagBag) -> None:
    dag = bag.dags["wave_demo-shop"]
    decides = [t for t in dag.tasks if isinstance(t, StageDecision) and t.task_id.startswith("validation.")]
    assert decides


def test_every_rollback_marker_leads_to_the_rollback_group(bag: DagBag) -> None:
    dag = bag.dags["wave_demo-shop"]
    start = dag.get_task("rollback.restore_blue_workloads")
    markers = [t for t in dag.tasks if t.task_id.endswith((".rollback_requested", ".gate_failed"))]
    assert set(start.upstream_task_ids) == {m.task_id for m in markers}
    assert start.trigger_rule == "one_success"
    held = dag.get_task("wave_held")
    assert set(held.upstream_task_ids) == {t.task_id for t in dag.tasks if t.task_id.endswith(".hold_requested")}


def test_a_failing_gate_starts_rollback_without_waiting_for_its_siblings(bag: DagBag) -> None:
    dag = bag.dags["wave_demo-shop"]
    fast = dag.get_task("gradual_transition.checkout.step1_10pct.gate_failed")
    assert fast.trigger_rule == "one_failed"
    assert fast.upstream_task_ids == {
        "gradual_transition.checkout.step1_10pct.gate_error-rate",
        "gradual_transition.checkout.step1_10pct.gate_p95-latency",
    }
    assert "rollback.restore_blue_workloads" in fast.downstream_task_ids


def test_hold_policy_gates_take_no_fast_path(tmp_path: Path) -> None:
    wave = small_wave("w", "alpha")
    wave["services"][1]["gates"][0]["on_no_data"] = "hold"
    write(tmp_path, wave)
    dag = bag_for(tmp_path).dags["wave_alpha"]
    assert "gradual_transition.web.step1_25pct.gate_failed" not in dag.task_ids
    assert "migrate_scheduled_jobs.report-job.handover.gate_failed" in dag.task_ids


def test_scheduled_jobs_move_before_exposed_services_and_dependencies_first(bag: DagBag) -> None:
    dag = bag.dags["wave_demo-shop"]

    def reaches(a: str, b: str) -> bool:
        return b in dag.get_task(a).get_flat_relative_ids(upstream=False)

    assert reaches(
        "migrate_scheduled_jobs.nightly-report.handover.hand_over", "gradual_transition.catalog.step1_5pct.set_traffic"
    )
    assert reaches(
        "gradual_transition.catalog.step4_100pct.decide", "gradual_transition.checkout.step1_10pct.set_traffic"
    )
    assert reaches("validation.catalog.decide", "gradual_transition.catalog.step1_5pct.set_traffic")


def test_the_report_runs_on_every_outcome_and_does_not_decide_the_run_state(bag: DagBag) -> None:
    dag = bag.dags["wave_demo-shop"]
    report = dag.get_task("post_release.evaluation_report")
    assert report.is_teardown
    assert {"post_release.wave_completed", "rollback.wave_rolled_back", "wave_held"} <= report.upstream_task_ids


def test_leases_are_released_by_their_own_task_at_the_end_of_every_run(bag: DagBag) -> None:
    from include.slow_injection.tasks.leases import ReleaseLeases

    dag = bag.dags["wave_demo-shop"]
    release = dag.get_task("post_release.release_leases")
    assert isinstance(release, ReleaseLeases) and release.is_teardown and release.retries >= 1
    assert {"post_release.wave_completed", "rollback.wave_rolled_back", "wave_held"} <= release.upstream_task_ids
    assert "preparation.plan_wave" in {t.task_id for t in release.upstream_list if t.is_setup}
    plan = dag.get_task("preparation.plan_wave")
    assert release.workloads == {name: s["workload"] for name, s in plan.services.items()}  # whatever it leased
    assert len(release.workloads) >= 3
    assert not hasattr(dag.get_task("post_release.evaluation_report"), "workloads")  # the report only reports


def test_a_broken_spec_shows_as_an_import_error_while_the_valid_waves_load(tmp_path: Path) -> None:
    two_good_one_broken(tmp_path)
    bag = bag_for(tmp_path)
    assert sorted(bag.dags) == ["emergency_rollback", "wave_alpha", "wave_gamma"]
    ((path, message),) = bag.import_errors.items()
    assert path.endswith("wave_spec_errors.py")
    assert 'beta.yaml: services[1].gates[0].threshold: must be a number ≥ 0, got "five"' in message
