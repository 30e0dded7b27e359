"""The full transition's e2e test on a real control plane: the team's test pod run in green through the
cncf-kubernetes KubernetesPodOperator. Exit 0 passes; any other exit rolls the wave back, never retried; an
error before any exit code (a pod that never starts) is retried; a pod that outlives the test's timeout is a
failed test; a dry run creates no pod; a cleared task replaces the run's pod, never doubles it.

Everything here is upstream Kubernetes (kube-apiserver with its validation, RBAC and the pods/log proxy to the
node's kubelet endpoint over TLS, the scheduler, the controller-manager) plus our Fargate emulation (the
webhook and scheduler that give each pod a Fargate node), EXCEPT the container itself: there is no container
runtime here, so no image is pulled and no process runs (command, args and env are stored on the pod, never
executed). kwok (sigs.k8s.io/kwok, upstream's tool for this) stands in for the kubelet and the container:

- phase and exit code come from kwok Stages chosen by the pod's labels/annotations, which the test sets
  through the e2e spec's `labels`/`annotations` (`outcome()` below): the container is Running at once
  (upstream's pod-ready stage); exit 0 after 1 s or the `pod-complete.stage.kwok.x-k8s.io/delay` annotation
  (deploy/kube/kwok/stages.yaml: upstream's Job pod-complete stage, for bare pods that do not restart); a pod
  labelled `pod-container-running-failed.stage.kwok.x-k8s.io: "true"` fails, after 1 s or its `.../delay`
  annotation, with the exit code of its `.../exit-code` annotation (upstream's chaos stage). Image pulls are
  not emulated either: the pod that never starts is one the Fargate emulation cannot place (too big);
- the log lines are a file the test writes in CRI log format, named by a kwok `ClusterLogs` object for the
  test's namespace (`container_log` below); kwok's kubelet-like server serves it as the container's log when
  the API server proxies `pods/log` to the node (tailLines included);
- not emulated by kwok: a followed log stream never ends (kwok cannot tell that the container stopped), and
  `activeDeadlineSeconds` is not enforced (no kubelet). The operator does not depend on either: it watches
  the container's status, and bounds the test's run time itself; both are tested here.

Routing and metrics stay simulated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from include.slow_injection.tasks.e2e_test_pod import LABEL, pod_name
from tests.support.e2e_job import CONN, IMAGE, e2e_test, fake_context, outcome
from tests.support.kube import wait_for
from tests.support.kube_support import blue_deployment, kubernetes_wave_frame
from tests.support.waves import run_wave, sim, weights_history

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

TASK = "full_transition.e2e_smoke"


# --- kwok's emulation of the container: its outcome and its log -----------------------------------------


class PodEvents:
    """Every e2e test pod the API server saw in a namespace (a watch from before the run): what was created
    and deleted, in order, and each pod as it was created."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.seen, self.pods = namespace, [], {}
        self._stop = threading.Event()
        self._version = self.core.list_namespaced_pod(namespace, label_selector=LABEL).metadata.resource_version
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stream = watch.Watch().stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=LABEL,
                    resource_version=self._version,
                    timeout_seconds=1,
                )
                for event in stream:
                    pod = event["object"]
                    self._version = pod.metadata.resource_version
                    if event["type"] in ("ADDED", "DELETED"):
                        self.seen.append((event["type"], pod.metadata.name, pod.metadata.uid))
                    if event["type"] == "ADDED":
                        self.pods[pod.metadata.uid] = pod
            except Exception:
                if not self._stop.wait(0.5):
                    continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def created(self) -> list[str]:
        return [uid for kind, _, uid in self.seen if kind == "ADDED"]

    def settle(self, deleted: int = 0) -> PodEvents:
        """Once the watch has caught up (`deleted` DELETED events seen, or a quiet second), stop it."""
        wait_for(lambda: sum(kind == "DELETED" for kind, _, _ in self.seen) >= deleted, "pod deletions seen")
        time.sleep(1.0)
        self.stop()
        return self


@pytest.fixture
def pod_events(kube) -> Iterator[Callable[[str], PodEvents]]:
    """`pod_events(namespace)` starts a PodEvents; every one is stopped after the test."""
    started: list[PodEvents] = []

    def start(namespace: str) -> PodEvents:
        started.append(PodEvents(kube.api_client, namespace))
        return started[-1]

    yield start
    for events in started:
        events.stop()


@pytest.fixture
def shop(kube, monkeypatch) -> tuple[str, str]:
    """Blue's web on the EC2 nodes; green's namespace, which the Fargate profile selects, with the
    PodDisruptionBudget preflight asks for there; the connection."""
    from include.slow_injection.drivers.kubernetes import KubeAccess

    blue_ns, green_ns = kube.namespace("shop"), kube.namespace("green")
    KubeAccess(kube.api_client).create("Deployment", blue_ns, blue_deployment(blue_ns))
    client.PolicyV1Api(kube.api_client).create_namespaced_pod_disruption_budget(
        green_ns,
        {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
    )
    kube.connection(monkeypatch, CONN)
    return blue_ns, green_ns


def e2e_wave(world: str, blue_ns: str, green_ns: str, test: dict[str, Any]) -> dict[str, Any]:
    return {
        **kubernetes_wave_frame("e2e", CONN),
        "services": [
            {
                "name": "web",
                "exposure": "exposed",
                "workload": {"kind": "Deployment", "namespace": blue_ns, "name": "web", "green_namespace": green_ns},
                "router": sim(world),
                "rollout_timeout": 60,
                "traffic_steps": [{"weight": 100, "bake": 0.2}],
            },
        ],
        "full_transition": {
            "e2e_test": {
                "name": "smoke",
                "image": IMAGE,
                "command": ["pytest", "-q", "journeys"],
                "env": {"TARGET": f"http://web.{green_ns}"},
                "timeout": 60,
                "log_tail_lines": 3,
                **test,
            }
        },
    }


def xcom(task_id: str, key: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id="wave_e2e", run_id=run_wave.last_run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def report(reports_dir: Path) -> tuple[str, str]:
    folder = reports_dir / "wave_e2e" / run_wave.last_run_id.replace(":", "_")
    return (folder / "report.md").read_text(), (folder / "report.html").read_text()


def gone(kube, namespace: str, name: str) -> bool:
    try:
        client.CoreV1Api(kube.api_client).read_namespaced_pod(name, namespace)
        return False
    except client.ApiException as err:
        if err.status == 404:
            return True
        raise


# --- whole waves ----------------------------------------------------------------------------------------


def test_a_passing_test_pod_lets_the_wave_complete(
    tmp_path: Path, world, kube, pod_events, shop, container_log, reports_dir: Path
) -> None:
    blue_ns, green_ns = shop
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    container_log(green_ns, [f"checking http://web.{green_ns}", "step 1 ok", "step 2 ok", "all 4 checks passed"])
    test = {**outcome(0, runs_ms=300), "labels": {"team": "shop"}}
    test["annotations"]["sidecar.istio.io/inject"] = "false"
    pods = pod_events(green_ns)
    state, tis = run_wave(tmp_path, world, e2e_wave(world.path.stem, blue_ns, green_ns, test))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert tis[TASK] == "success"
    run = xcom(TASK, "e2e_test")
    assert run["exit_code"] == 0 and run["phase"] == "Succeeded"
    assert run["pod"] == pod_name("smoke", "wave_e2e", run_wave.last_run_id)
    assert run["log_tail"] == ["step 1 ok", "step 2 ok", "all 4 checks passed"]  # the last 3 lines
    assert run["started_at"] <= run["finished_at"]
    assert xcom(TASK, "verdict")["status"] == "pass"
    pods.settle(deleted=1)
    assert len(pods.created()) == 1 and pods.seen[-1][0] == "DELETED"  # one pod, deleted once judged
    assert gone(kube, green_ns, run["pod"])
    [pod] = pods.pods.values()  # the pod as the API server stored it
    container = pod.spec.containers[0]
    assert (container.image, container.command) == (IMAGE, ["pytest", "-q", "journeys"])
    assert [(e.name, e.value) for e in container.env] == [("TARGET", f"http://web.{green_ns}")]
    assert pod.spec.active_deadline_seconds == 60 and pod.spec.restart_policy == "Never"
    assert {"team": "shop", "compute": "fargate", LABEL: "smoke"}.items() <= pod.metadata.labels.items()
    assert pod.metadata.annotations["sidecar.istio.io/inject"] == "false"
    assert pod.spec.scheduler_name == "fargate-scheduler"  # green's Fargate profile took it
    markdown, page = report(reports_dir)
    assert "### E2e test smoke (pass)" in markdown and "all 4 checks passed" in markdown
    assert "<h2>End-to-end test</h2>" in page and "step 2 ok" in page


def test_a_failing_test_pod_rolls_the_wave_back(
    tmp_path: Path, world, kube, pod_events, shop, container_log, reports_dir: Path
) -> None:
    blue_ns, green_ns = shop
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    container_log(green_ns, ["login ok", "checkout ok", "payment FAILED: 502 from psp", "1 of 3 checks failed"])
    pods = pod_events(green_ns)
    state, tis = run_wave(tmp_path, world, e2e_wave(world.path.stem, blue_ns, green_ns, outcome(3)))
    assert state == "failed"
    assert tis[TASK] == "failed"
    assert tis["rollback.traffic_to_blue"] == "success" and tis["rollback.wave_rolled_back"] == "failed"
    assert weights_history(world) == [100, 0]  # all of it went to green, then back to blue
    run = xcom(TASK, "e2e_test")
    assert run["exit_code"] == 3 and run["phase"] == "Failed"
    assert run["log_tail"] == ["checkout ok", "payment FAILED: 502 from psp", "1 of 3 checks failed"]
    verdict = xcom(TASK, "verdict")
    assert verdict["status"] == "fail" and "exited 3" in verdict["reason"]
    assert len(pods.settle(deleted=1).created()) == 1  # a failed test is a verdict: never retried
    decision = xcom("full_transition.decide", "decision")
    assert decision is None or decision["outcome"] == "rollback"
    markdown, page = report(reports_dir)
    assert "**Outcome: rolled back**" in markdown
    assert "exit code 3" in markdown and "payment FAILED: 502 from psp" in page


def test_a_dry_run_creates_no_pod(tmp_path: Path, world, kube, pod_events, shop) -> None:
    blue_ns, green_ns = shop
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    pods = pod_events(green_ns)
    state, tis = run_wave(
        tmp_path, world, e2e_wave(world.path.stem, blue_ns, green_ns, outcome(3)), conf={"dry_run": True}
    )
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert pods.settle().seen == []
    run = xcom(TASK, "e2e_test")
    assert run["dry_run"] is True and "would run pod e2e-smoke-" in run["would_run"]
    assert f"{IMAGE} pytest -q journeys in namespace {green_ns}" in run["would_run"]


# --- the operator alone (no DAG run) -----------------------------------------------------------------------


def test_the_failure_message_names_the_exit_code_and_the_log_tail(kube, shop, container_log) -> None:
    """The task's own error (what the UI shows in red) carries the exit code and the last lines."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.slow_injection.tasks.e2e_test_pod import E2eTestPod

    _, green_ns = shop
    container_log(green_ns, ["a", "b"])
    op = E2eTestPod(task_id="e2e_smoke", test=e2e_test(green_ns, **outcome(3)))
    context = fake_context()
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context)
    message = str(raised.value)
    assert "exited 3" in message and "| a\n" in message and "| b" in message
    assert context["ti"].pushed["e2e_test"]["log_tail"] == ["a", "b"]


def test_the_verdict_does_not_wait_for_a_log_stream_left_open(kube, shop, container_log) -> None:
    """The container's log is followed into the task log while it runs, but its end is read from the pod's
    status: a node that leaves the stream open after the container stopped (kwok always does; kubelets have,
    kubernetes#59902) must not hold the verdict (the provider would wait out its 5-minute read timeout, and
    a DAG's execution_timeout would fail, then retry, a test that passed)."""
    from include.slow_injection.tasks.e2e_test_pod import E2eTestPod

    _, green_ns = shop
    container_log(green_ns, ["suite started", "12 passed in 0.6s"])
    op = E2eTestPod(task_id="e2e_smoke", test=e2e_test(green_ns, **outcome(0, runs_ms=1500)))
    op._cached_logger = task_log = TaskLog()
    context = fake_context()
    started = time.monotonic()
    verdict = op.execute(context)
    took = time.monotonic() - started
    assert verdict["status"] == "pass"
    assert took < 30, f"the verdict took {took:.0f} s"
    assert "[base] 12 passed in 0.6s" in task_log.lines  # streamed into the task log as it came
    assert context["ti"].pushed["e2e_test"]["log_tail"] == ["suite started", "12 passed in 0.6s"]


def test_a_test_pod_that_outlives_its_timeout_fails_without_retry(kube, pod_events, shop, container_log) -> None:
    """On a real node the kubelet kills the pod at its activeDeadlineSeconds (the test's timeout): exit
    137, a failed test. kwok has no kubelet to do it, and a node can go silent: the operator bounds the run
    itself and judges an overrun a failed test (no retry), not an error to retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.slow_injection.tasks.e2e_test_pod import E2eTestPod

    _, green_ns = shop
    container_log(green_ns, ["waiting for checkout to answer..."])
    pods = pod_events(green_ns)
    op = E2eTestPod(task_id="e2e_smoke", test=e2e_test(green_ns, timeout=3, **outcome(0, runs_ms=120_000)))
    context = fake_context()
    started = time.monotonic()
    with pytest.raises(AirflowFailException, match="did not finish within 3s"):
        op.execute(context)
    assert time.monotonic() - started < 30
    run = context["ti"].pushed["e2e_test"]
    assert run["exit_code"] is None and run["log_tail"] == ["waiting for checkout to answer..."]
    verdict = context["ti"].pushed["verdict"]
    assert verdict["status"] == "fail" and "did not finish within 3s" in verdict["reason"]
    pods.settle(deleted=1)
    [pod] = pods.pods.values()
    assert pod.spec.active_deadline_seconds == 3  # what a real kubelet enforces
    assert gone(kube, green_ns, run["pod"])


def test_a_test_pod_that_never_starts_is_retried_not_judged(kube, pod_events, shop) -> None:
    """No exit code, no verdict on the test: too big for any Fargate size, the pod stays Pending (the
    Fargate emulation's FailedScheduling, as EKS does), and the task fails to be retried; the pod goes."""
    from kubernetes.client import models as k8s

    from include.slow_injection.tasks.e2e_test_pod import E2eTestPod

    _, green_ns = shop
    pods = pod_events(green_ns)
    too_big = k8s.V1ResourceRequirements(
        requests={"cpu": "32", "memory": "256Gi"}, limits={"cpu": "32", "memory": "256Gi"}
    )
    op = E2eTestPod(task_id="e2e_smoke", test=e2e_test(green_ns, timeout=3), container_resources=too_big)
    context = fake_context()
    with pytest.raises(RuntimeError, match="gave no exit code.*will retry") as raised:
        op.execute(context)
    assert "PodLaunchTimeoutException" in str(raised.value)
    assert context["ti"].pushed["verdict"]["status"] == "fail"
    assert context["ti"].pushed["e2e_test"]["exit_code"] is None
    pods.settle(deleted=1)
    assert len(pods.created()) == 1 and gone(kube, green_ns, pods.seen[0][1])


def test_a_pod_left_by_an_earlier_try_is_replaced_not_doubled(kube, pod_events, shop, container_log) -> None:
    """A cleared task finds the run's pod of its earlier try (already judged, kept): it is deleted and one
    pod of the same name replaces it, never a second one beside it."""
    from include.slow_injection.tasks.e2e_test_pod import E2eTestPod

    _, green_ns = shop
    core = client.CoreV1Api(kube.api_client)
    context = fake_context()
    name = pod_name("smoke", "wave_e2e", context["run_id"])
    earlier = outcome(3)
    core.create_namespaced_pod(
        green_ns,
        {
            "metadata": {
                "name": name,
                "labels": {**earlier["labels"], "already_checked": "True", LABEL: "smoke"},
                "annotations": earlier["annotations"],
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": IMAGE}]},
        },
    )
    wait_for(lambda: core.read_namespaced_pod(name, green_ns).status.phase == "Failed", "the earlier try's pod failed")
    first = core.read_namespaced_pod(name, green_ns).metadata.uid
    container_log(green_ns, ["second try"])
    pods = pod_events(green_ns)
    verdict = E2eTestPod(task_id="e2e_smoke", test=e2e_test(green_ns, log_tail_lines=5, **outcome(0))).execute(context)
    assert verdict["status"] == "pass"
    assert context["ti"].pushed["e2e_test"]["log_tail"] == ["second try"]
    pods.settle(deleted=2)
    second = pods.created()
    assert len(second) == 1 and second[0] != first
    assert pods.seen == [("DELETED", name, first), ("ADDED", name, second[0]), ("DELETED", name, second[0])]
    assert core.list_namespaced_pod(green_ns, label_selector=LABEL).items == []


class TaskLog:
    """Stands in for the operator's logger: every message it was given, formatted."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str):
        def record(message: str, *args: Any, **_: Any) -> None:
            self.lines.append(message % args if args else message)

        return record
