"""The full transition's e2e test: the team's test pod run in green through the cncf-kubernetes
KubernetesPodOperator against the stand-in API server (its controllers run the pod's tiny shell
command and serve its log). Exit 0 passes; any other exit rolls the wave back; a dry run creates no
pod. Routing and metrics stay simulated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.slow_injection.lab.kube.api_server import KubernetesTestServer
from include.slow_injection.lab.kube.controllers import StandInControllers
from include.slow_injection.lab.kube.seed import seed
from include.slow_injection.tasks.e2e_test import pod_name
from tests.test_wave_runs import run_wave, weights_history
from tests.waves import sim

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

TASK = "full_transition.e2e_smoke"
PODS = "/api/v1/namespaces/shop-fargate/pods"


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN201
    with KubernetesTestServer() as server:
        seed(server.store, "shop", "shop-fargate")
        controllers = StandInControllers(server.store)
        stop = controllers.run_in_background(0.1)
        kubeconfig = tmp_path / "kubeconfig.json"
        kubeconfig.write_text(json.dumps(server.kubeconfig()))
        monkeypatch.setenv("AIRFLOW_CONN_STAND_IN", json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}))
        yield server
        stop.set()


def e2e_wave(world: str, script: str) -> dict:
    platform = {"type": "kubernetes", "connection": "stand_in", "add_labels": {"compute": "fargate"}}
    return {
        "id": "e2e", "owner": "team-test",
        "environments": {"blue": {"name": "eks-ec2", "platform": platform},
                         "green": {"name": "eks-fargate", "platform": dict(platform)}},
        "retries": {"count": 2, "delay": 0.5}, "rollback": {"retries": 2, "retry_delay": 0.5},
        "services": [
            {"name": "web", "exposure": "exposed",
             "workload": {"kind": "Deployment", "namespace": "shop", "name": "web", "green_namespace": "shop-fargate"},
             "router": sim(world), "rollout_timeout": 60, "traffic_steps": [{"weight": 100, "bake": 0.2}]},
        ],
        "full_transition": {"e2e_test": {
            "name": "smoke", "image": "busybox:1.36", "command": ["sh", "-c", script],
            "env": {"TARGET": "http://web.shop-fargate"}, "timeout": 60, "log_tail_lines": 3}},
    }


def xcom(task_id: str, key: str):  # noqa: ANN201
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id="wave_e2e", run_id=run_wave.last_run_id,
                                                 task_id=task_id, key=key).one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


def report(reports_dir: Path) -> tuple[str, str]:
    folder = reports_dir / "wave_e2e" / run_wave.last_run_id.replace(":", "_")
    return (folder / "report.md").read_text(), (folder / "report.html").read_text()


def pods_created(server) -> int:  # noqa: ANN001
    return sum(1 for method, path in server.store.requests if method == "POST" and path == PODS)


def test_a_passing_test_pod_lets_the_wave_complete(tmp_path: Path, world, cluster, reports_dir: Path) -> None:  # noqa: ANN001
    server = cluster
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    script = "echo checking $TARGET; echo step 1 ok; sleep 0.3; echo step 2 ok; echo all 4 checks passed; exit 0"
    state, tis = run_wave(tmp_path, world, e2e_wave(world.path.stem, script))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert tis[TASK] == "success"
    run = xcom(TASK, "e2e_test")
    assert run["exit_code"] == 0 and run["phase"] == "Succeeded"
    assert run["pod"] == pod_name("smoke", "wave_e2e", run_wave.last_run_id)
    assert run["log_tail"] == ["step 1 ok", "step 2 ok", "all 4 checks passed"]  # the last 3 lines
    assert run["started_at"] <= run["finished_at"]
    assert xcom(TASK, "verdict")["status"] == "pass"
    assert pods_created(server) == 1
    assert server.store.get("pods", "shop-fargate", run["pod"]) is None  # deleted once judged
    markdown, page = report(reports_dir)
    assert "### E2e test smoke (pass)" in markdown and "all 4 checks passed" in markdown
    assert "<h2>End-to-end test</h2>" in page and "step 2 ok" in page


def test_a_failing_test_pod_rolls_the_wave_back(tmp_path: Path, world, cluster, reports_dir: Path) -> None:  # noqa: ANN001
    server = cluster
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    script = "echo login ok; echo checkout ok; echo 'payment FAILED: 502 from psp'; echo 1 of 3 checks failed; exit 3"
    state, tis = run_wave(tmp_path, world, e2e_wave(world.path.stem, script))
    assert state == "failed"
    assert tis[TASK] == "failed"
    assert tis["rollback.traffic_to_blue"] == "success" and tis["rollback.wave_rolled_back"] == "failed"
    assert weights_history(world) == [100, 0]  # all of it went to green, then back to blue
    run = xcom(TASK, "e2e_test")
    assert run["exit_code"] == 3 and run["phase"] == "Failed"
    assert run["log_tail"] == ["checkout ok", "payment FAILED: 502 from psp", "1 of 3 checks failed"]
    verdict = xcom(TASK, "verdict")
    assert verdict["status"] == "fail" and "exited 3" in verdict["reason"]
    assert pods_created(server) == 1  # a failed test is a verdict: never retried
    decision = xcom("full_transition.decide", "decision")
    assert decision is None or decision["outcome"] == "rollback"
    markdown, page = report(reports_dir)
    assert "**Outcome: rolled back**" in markdown
    assert "exit code 3" in markdown and "payment FAILED: 502 from psp" in page


def test_the_failure_message_names_the_exit_code_and_the_log_tail(tmp_path: Path, world, cluster, caplog) -> None:  # noqa: ANN001
    """The task's own error (what the UI shows in red) carries the exit code and the last lines."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.slow_injection.tasks.e2e_test import E2eTestPod

    world.reset({})
    test = {"name": "smoke", "image": "busybox:1.36", "command": ["sh", "-c", "echo a; echo b; exit 3"], "args": [],
            "env": {}, "namespace": "shop-fargate", "connection": "stand_in", "timeout": 30, "log_tail_lines": 50}
    op = E2eTestPod(task_id="e2e_smoke", test=test)
    context = fake_context()
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context)
    message = str(raised.value)
    assert "exited 3" in message and "| a\n" in message and "| b" in message
    assert context["ti"].pushed["e2e_test"]["log_tail"] == ["a", "b"]


def test_a_dry_run_creates_no_pod(tmp_path: Path, world, cluster) -> None:  # noqa: ANN001
    server = cluster
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    state, tis = run_wave(tmp_path, world, e2e_wave(world.path.stem, "exit 3"), conf={"dry_run": True})
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert pods_created(server) == 0
    run = xcom(TASK, "e2e_test")
    assert run["dry_run"] is True and "would run pod e2e-smoke-" in run["would_run"]
    assert "busybox:1.36 sh -c exit 3 in namespace shop-fargate" in run["would_run"]


def test_a_pod_left_by_an_earlier_try_is_replaced_not_doubled(world, cluster) -> None:  # noqa: ANN001
    """A cleared task finds the run's pod of its earlier try (already judged, kept): it is replaced by one
    pod of the same name, never a second one beside it."""
    server = cluster
    world.reset({})
    context = fake_context()
    name = pod_name("smoke", "wave_e2e", context["run_id"])
    server.store.put("pods", {"metadata": {"name": name, "namespace": "shop-fargate",
                                           "labels": {"already_checked": "True"}},
                              "spec": {"containers": [{"name": "base", "image": "busybox:1.36",
                                                       "command": ["sh", "-c", "exit 3"]}]}}, creating=True)
    from include.slow_injection.tasks.e2e_test import E2eTestPod

    test = {"name": "smoke", "image": "busybox:1.36", "command": ["sh", "-c", "echo second try; exit 0"],
            "args": [], "env": {}, "namespace": "shop-fargate", "connection": "stand_in", "timeout": 30,
            "log_tail_lines": 5}
    verdict = E2eTestPod(task_id="e2e_smoke", test=test).execute(context)
    assert verdict["status"] == "pass"
    assert context["ti"].pushed["e2e_test"]["log_tail"] == ["second try"]
    assert [p["metadata"]["name"] for p in server.store.list("pods", "shop-fargate")] == []
    assert ("DELETE", f"{PODS}/{name}") in server.store.requests


class _FakeTI:
    """Just what the operator asks of a task instance outside a DAG run."""

    dag_id, task_id, run_id, map_index, try_number = "wave_e2e", "e2e_smoke", "manual__fake", -1, 1

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:  # noqa: ANN001
        self.pushed[key] = value

    def xcom_pull(self, **_):  # noqa: ANN003, ANN201
        return None


def fake_context() -> dict:
    class Dag:
        dag_id = "wave_e2e"

    return {"ti": _FakeTI(), "run_id": "manual__fake", "dag": Dag(), "params": {"dry_run": False}}
