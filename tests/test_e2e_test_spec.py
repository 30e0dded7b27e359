"""The e2e test's spec (full_transition.e2e_test), its gate in the builder, its report section, and the pod
it runs as on a real control plane without Airflow: kwok's emulation of the test container (exit code and
log) and a Job's pod through the real Job controller.

There is no container runtime here: no image is pulled, no process runs. Everything is upstream Kubernetes
(kube-apiserver, controller-manager with the Job controller, scheduler) plus our Fargate emulation, except the
container, which kwok emulates: Running at once; the exit code from kwok Stages picked by the pod's
labels/annotations (`tests.test_e2e_test_job.outcome`: exit 0 after the `pod-complete` delay, or the exit code
of upstream's `pod-container-running-failed` chaos stage); the log from the file a kwok ClusterLogs object
names, served by kwok's kubelet-like server when the API server proxies `pods/log` to the node. kwok never
ends a followed log stream (it cannot tell the container stopped): pinned below, because the operator must
not depend on it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from include.slow_injection import kinds
from include.slow_injection.phases import full_transition
from include.slow_injection.spec import SpecError, load_wave
from tests.support.e2e_job import outcome
from tests.support.kube import wait_for
from tests.support.waves import small_wave, write

E2E = {"name": "smoke", "image": "registry.example/shop-e2e:1.4", "args": ["--suite", "smoke"]}


def wave(e2e: dict | None = None, **green_platform) -> dict:
    data = small_wave("w", wave_id="w3")
    data["environments"]["green"]["platform"].update(green_platform)
    data["full_transition"] = {"e2e_test": {**E2E, **(e2e or {})}}
    return data


@pytest.mark.parametrize(
    ("case", "data", "expected"),
    [
        (
            "no connection to default to",
            wave(),
            "full_transition.e2e_test.connection: required (green's platform is 'simulated' with no Kubernetes",
        ),
        (
            "several green namespaces",
            None,
            "full_transition.e2e_test.namespace: required: the wave's services run in several green namespaces (jobs, shop)",
        ),
        (
            "tail too long",
            wave({"log_tail_lines": 5000, "connection": "k8s"}),
            "full_transition.e2e_test.log_tail_lines",
        ),
        (
            "a quoted number as timeout",
            wave({"timeout": "soon", "connection": "k8s"}),
            "full_transition.e2e_test.timeout",
        ),
        (
            "name taken by a health check",
            None,
            "full_transition.e2e_test.name: 'smoke' is already a gate or health check",
        ),
        ("typo", wave({"comand": ["sh"], "connection": "k8s"}), "full_transition.e2e_test.comand: unknown key"),
        (
            "a label key Kubernetes refuses",
            wave({"labels": {"Team Name": "shop"}, "connection": "k8s"}),
            "full_transition.e2e_test.labels.Team Name",
        ),
        (
            "a label value Kubernetes refuses",
            wave({"labels": {"team": "shop & co"}, "connection": "k8s"}),
            "full_transition.e2e_test.labels.team",
        ),
        (
            "an annotation key Kubernetes refuses",
            wave({"annotations": {"-x": "1"}, "connection": "k8s"}),
            "full_transition.e2e_test.annotations.-x",
        ),
        (
            "the test's own label",
            wave({"labels": {"slow-injection.io/e2e-test": "x"}, "connection": "k8s"}),
            "labels.slow-injection.io/e2e-test: set by Slow Injection",
        ),
    ],
)
def test_a_bad_e2e_test_is_refused_naming_the_field(
    tmp_path: Path, case: str, data: dict | None, expected: str
) -> None:
    if case == "several green namespaces":
        data = wave({"connection": "k8s"})
        data["services"][0]["workload"]["green_namespace"] = "jobs"
    if case == "name taken by a health check":
        data = wave({"connection": "k8s"})
        data["full_transition"]["health_checks"] = [{"name": "smoke", "check": {"type": "simulated", "world": "w"}}]
    with pytest.raises(SpecError) as caught:
        load_wave(write(tmp_path, data, name="w3"))
    assert expected in str(caught.value), str(caught.value)


def test_the_gate_defaults_to_greens_namespace_and_connection(tmp_path: Path) -> None:
    data = wave({"connection": None, "labels": {"team": "shop"}, "annotations": {"sidecar.istio.io/inject": "false"}})
    for env in ("blue", "green"):
        data["environments"][env]["platform"] = {"type": "kubernetes", "connection": f"k8s-{env}"}
    data["services"][1]["workload"]["green_namespace"] = "shop-fargate"
    data["services"][0]["workload"]["green_namespace"] = "shop-fargate"
    loaded = load_wave(write(tmp_path, data, name="w3"))
    [stage] = full_transition.stages(loaded)
    [gate] = [g for g in stage.gates if g.kind == "e2e_test"]
    assert gate.task_id == "e2e_smoke"
    assert (gate.spec.namespace, gate.spec.connection, gate.spec.log_tail_lines) == ("shop-fargate", "k8s-green", 50)
    assert (gate.spec.labels, gate.spec.annotations) == ({"team": "shop"}, {"sidecar.istio.io/inject": "false"})
    line = kinds.gate(gate.kind).plan_line(gate)
    assert "registry.example/shop-e2e:1.4 --suite smoke in shop-fargate via k8s-green" in line


def test_the_operator_puts_the_spec_on_the_pod_and_keeps_its_own_label_and_greens() -> None:
    from include.slow_injection.tasks.e2e_test_pod import LABEL, E2eTestPod

    test = {
        **E2E,
        "command": [],
        "env": {"A": "1"},
        "namespace": "shop",
        "connection": "k8s",
        "timeout": 30,
        "log_tail_lines": 5,
        "labels": {"team": "shop", "compute": "ec2"},
        "annotations": {"sidecar.istio.io/inject": "false"},
    }
    op = E2eTestPod(task_id="e2e_smoke", test=test, pod_labels={"compute": "fargate"})
    assert op.labels == {"team": "shop", "compute": "fargate", LABEL: "smoke"}  # green's add_labels win
    assert op.annotations == {"sidecar.istio.io/inject": "false"}
    assert (op.active_deadline_seconds, op.arguments, op.cmds) == (30, ["--suite", "smoke"], [])


@pytest.mark.parametrize(("exit_code", "runs_ms"), [(0, 1500), (4, 1500)])
def test_kwok_ends_the_container_with_the_exit_code_its_pod_asks_for_and_serves_its_log(
    kube, container_log, exit_code: int, runs_ms: int
) -> None:
    """No process runs: Running at once, then the asked-for exit code after the asked-for time; the log
    lines (from the file kwok's ClusterLogs names) come through the API server's pods/log, tail included."""
    namespace = kube.namespace("green")
    container_log(namespace, ["a", "b", "x; y"])
    core = client.CoreV1Api(kube.api_client)
    asked = outcome(exit_code, runs_ms=runs_ms)
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "t", "labels": asked["labels"], "annotations": asked["annotations"]},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "base", "image": "registry.example/t:1", "command": ["sh", "-c", "echo this never runs"]}
                ],
            },
        },
    )
    running = wait_for(
        lambda: core.read_namespaced_pod("t", namespace).status.phase == "Running" and time.monotonic(),
        "the pod running",
    )
    pod = wait_for(
        lambda: (p := core.read_namespaced_pod("t", namespace)).status.phase in ("Succeeded", "Failed") and p,
        "the pod ended",
        interval=0.05,
    )
    assert time.monotonic() - running >= runs_ms / 1000 - 0.5  # it ran for the asked-for time
    assert pod.status.phase == ("Succeeded" if exit_code == 0 else "Failed")
    assert pod.status.container_statuses[0].state.terminated.exit_code == exit_code
    log = core.read_namespaced_pod_log("t", namespace, container="base", _preload_content=False)
    assert log.data == b"a\nb\nx; y\n"
    tail = core.read_namespaced_pod_log("t", namespace, container="base", tail_lines=2, _preload_content=False)
    assert tail.data == b"b\nx; y\n"


def test_kwok_never_ends_a_followed_log(kube, container_log) -> None:
    """The emulation's one gap the e2e operator must not depend on: a kubelet ends a followed log when the
    container stops, kwok (no runtime to ask) keeps it open. The operator reads the end from the pod status."""
    from urllib3.exceptions import ReadTimeoutError

    namespace = kube.namespace("green")
    container_log(namespace, ["done"])
    core = client.CoreV1Api(kube.api_client)
    asked = outcome(3)
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "t", **asked},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "registry.example/t:1"}]},
        },
    )
    wait_for(lambda: core.read_namespaced_pod("t", namespace).status.phase == "Failed", "the pod failed")
    stream = core.read_namespaced_pod_log(
        "t", namespace, container="base", follow=True, _preload_content=False, _request_timeout=(10, 2)
    )
    got = b""
    with pytest.raises(ReadTimeoutError):
        for chunk in stream.stream(amt=None):
            got += chunk
    assert got == b"done\n"


def test_a_job_made_through_the_api_runs_its_pod_and_serves_its_log(kube, container_log) -> None:
    """What a Job-based runner (e.g. KubernetesJobOperator) needs, from the real Job controller: Job → pod,
    the pod's exit code, the Job Failed, the pod log (tailLines)."""
    namespace = kube.namespace("green")
    container_log(namespace, ["one", "two"])
    asked = outcome(5)
    batch = client.BatchV1Api(kube.api_client)
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "e2e"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": asked,
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "base",
                                "image": "registry.example/t:1",
                                "command": ["sh", "-c", "echo one; echo two; exit 5"],
                            }
                        ],
                    },
                },
            },
        },
    )
    core = client.CoreV1Api(kube.api_client)
    [pod] = wait_for(lambda: core.list_namespaced_pod(namespace, label_selector="job-name=e2e").items, "the Job's pod")
    job = wait_for(
        lambda: (j := batch.read_namespaced_job_status("e2e", namespace)).status.failed and j, "the Job failed"
    )
    assert [c.type for c in job.status.conditions if c.status == "True"][-1] == "Failed"
    pod = core.read_namespaced_pod(pod.metadata.name, namespace)
    assert pod.status.container_statuses[0].state.terminated.exit_code == 5
    log = core.read_namespaced_pod_log(
        pod.metadata.name, namespace, container="base", tail_lines=1, _preload_content=False
    )
    assert log.data == b"two\n"


def test_the_report_section_shows_the_tail_escaped_and_says_nothing_without_a_test() -> None:
    from include.slow_injection.reporting.html import kind_sections
    from include.slow_injection.tasks.report import kind_lines

    verdict = {
        "gate": "smoke",
        "kind": "e2e_test",
        "status": "fail",
        "reason": "pod p exited 3",
        "e2e_test": {
            "pod": "p",
            "namespace": "shop",
            "image": "busybox:1.36",
            "exit_code": 3,
            "started_at": 0.0,
            "finished_at": 2.0,
            "log_tail": ["ok", "<script>boom</script>"],
        },
    }
    page = "".join(kind_sections({"full_transition.e2e_smoke": verdict, "other": None}))
    assert "exit code 3" in page and "&lt;script&gt;boom&lt;/script&gt;" in page and "<script>" not in page
    assert "<script>boom</script>" in "\n".join(kind_lines({"t": verdict}))  # markdown keeps it in a code block
    assert kind_sections({"gate_x": {"kind": "metric", "status": "pass"}}) == [] and kind_lines({}) == []
