"""The e2e test's spec (full_transition.e2e_test), its gate in the builder, and the stand-in's pod runtime
(the tiny shell subset it interprets, a Job's pod, the pod log through the official client). No Airflow run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from include.slow_injection.builders import full_transition
from include.slow_injection.lab.kube.api_server import Store
from include.slow_injection.lab.kube.pod_runtime import is_stock_image, program, run_pods
from include.slow_injection.spec import SpecError, load_wave
from tests.waves import small_wave, write

E2E = {"name": "smoke", "image": "registry.example/shop-e2e:1.4", "args": ["--suite", "smoke"]}


def wave(e2e: dict | None = None, **green_platform) -> dict:  # noqa: ANN003
    data = small_wave("w", wave_id="w3")
    data["environments"]["green"]["platform"].update(green_platform)
    data["full_transition"] = {"e2e_test": {**E2E, **(e2e or {})}}
    return data


@pytest.mark.parametrize(("case", "data", "expected"), [
    ("no connection to default to", wave(),
     "full_transition.e2e_test.connection: required (green's platform is 'simulated' with no Kubernetes"),
    ("several green namespaces", None,
     "full_transition.e2e_test.namespace: required: the wave's services run in several green namespaces (jobs, shop)"),
    ("tail too long", wave({"log_tail_lines": 5000, "connection": "k8s"}), "full_transition.e2e_test.log_tail_lines"),
    ("a quoted number as timeout", wave({"timeout": "soon", "connection": "k8s"}), "full_transition.e2e_test.timeout"),
    ("name taken by a health check", None, "full_transition.e2e_test.name: 'smoke' is already a gate or health check"),
    ("typo", wave({"comand": ["sh"], "connection": "k8s"}), "full_transition.e2e_test.comand: unknown key"),
])
def test_a_bad_e2e_test_is_refused_naming_the_field(tmp_path: Path, case: str, data: dict | None, expected: str) -> None:
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
    data = wave({"connection": None})
    for env in ("blue", "green"):
        data["environments"][env]["platform"] = {"type": "kubernetes", "connection": f"k8s-{env}"}
    data["services"][1]["workload"]["green_namespace"] = "shop-fargate"
    data["services"][0]["workload"]["green_namespace"] = "shop-fargate"
    loaded = load_wave(write(tmp_path, data, name="w3"))
    [stage] = full_transition.stages(loaded)
    [gate] = [g for g in stage.gates if g.kind == "e2e_test"]
    assert gate.task_id == "e2e_smoke"
    assert (gate.spec.namespace, gate.spec.connection, gate.spec.log_tail_lines) == ("shop-fargate", "k8s-green", 50)
    assert "registry.example/shop-e2e:1.4 --suite smoke in shop-fargate via k8s-green" in gate.summary


@pytest.mark.parametrize(("container", "steps"), [
    ({"command": ["sh", "-c", "echo ok; exit 0"]}, [(0, "line", "ok"), (0, "exit", 0)]),
    ({"command": ["sh", "-c", "echo $A-${B}\nsleep 0.5; echo 'x; y'; exit 3"], "env": [{"name": "A", "value": "1"},
                                                                                     {"name": "B", "value": "2"}]},
     [(0, "line", "1-2"), (0.5, "line", "x; y"), (0.5, "exit", 3)]),
    ({"command": ["echo"], "args": ["hello", "world"]}, [(0, "line", "hello world"), (0, "exit", 0)]),
    ({"command": ["sh", "-c", "echo a && exit 3"]}, [(0, "exit", 127)]),
    ({"command": ["curl", "http://x"]}, [(0, "exit", 127)]),
])
def test_the_stand_in_interprets_only_echo_sleep_and_exit(container: dict, steps: list) -> None:
    got = program({"name": "base", **container})
    if steps[-1][2] == 127:  # unsupported: one line saying so, then exit 127
        assert got[-1] == (0, "exit", 127) and "not simulated" in got[0][2]
    else:
        assert got == steps


def test_a_pod_runs_its_script_on_the_controllers_clock() -> None:
    store, start = Store(), dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    store.put("pods", {"metadata": {"name": "t", "namespace": "ns"}, "spec": {
        "containers": [{"name": "base", "image": "busybox:1.36", "command": ["sh", "-c", "echo a; sleep 2; echo b; exit 4"]}]}},
        creating=True)
    run_pods(store, start)
    assert store.get("pods", "ns", "t")["status"]["phase"] == "Running"
    run_pods(store, start + dt.timedelta(seconds=1))
    entry = next(iter(store.pod_logs.values()))
    assert [text for _, text in entry["lines"]] == ["a"]
    run_pods(store, start + dt.timedelta(seconds=2))
    pod = store.get("pods", "ns", "t")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4
    assert [text for _, text in entry["lines"]] == ["a", "b"]


def test_an_image_the_stand_in_cannot_run_stays_pending_with_err_image_pull() -> None:
    store = Store()
    store.put("pods", {"metadata": {"name": "t", "namespace": "ns"}, "spec": {
        "containers": [{"name": "base", "image": "registry.example/shop-e2e:1.4"}]}}, creating=True)
    run_pods(store, dt.datetime.now(dt.timezone.utc))
    status = store.get("pods", "ns", "t")["status"]
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"
    assert is_stock_image("docker.io/library/alpine:3.20") and not is_stock_image("registry.example/busyboxy:1")


def test_active_deadline_kills_a_pod_that_runs_too_long() -> None:
    store, start = Store(), dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    store.put("pods", {"metadata": {"name": "t", "namespace": "ns"}, "spec": {
        "activeDeadlineSeconds": 5,
        "containers": [{"name": "base", "image": "busybox", "command": ["sh", "-c", "sleep 60"]}]}}, creating=True)
    run_pods(store, start)
    run_pods(store, start + dt.timedelta(seconds=6))
    status = store.get("pods", "ns", "t")["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_the_report_section_shows_the_tail_escaped_and_says_nothing_without_a_test() -> None:
    from include.slow_injection.reporting.e2e_test import html_section, markdown_lines

    verdict = {"gate": "smoke", "kind": "e2e_test", "status": "fail", "reason": "pod p exited 3",
               "e2e_test": {"pod": "p", "namespace": "shop", "image": "busybox:1.36", "exit_code": 3,
                            "started_at": 0.0, "finished_at": 2.0, "log_tail": ["ok", "<script>boom</script>"]}}
    page = html_section({"full_transition.e2e_smoke": verdict, "other": None})
    assert "exit code 3" in page and "&lt;script&gt;boom&lt;/script&gt;" in page and "<script>" not in page
    assert "<script>boom</script>" in "\n".join(markdown_lines({"t": verdict}))  # markdown keeps it in a code block
    assert html_section({"gate_x": {"kind": "metric", "status": "pass"}}) == "" and markdown_lines({}) == []


def test_a_job_made_through_the_api_runs_its_pod_and_serves_its_log() -> None:
    """What a Job-based runner (e.g. KubernetesJobOperator) needs: Job → pod, pod log (tailLines), Job Failed."""
    from kubernetes import client

    from include.slow_injection.lab.kube.api_server import KubernetesTestServer
    from include.slow_injection.lab.kube.controllers import StandInControllers

    with KubernetesTestServer() as server:
        controllers = StandInControllers(server.store, start=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        config = client.Configuration()
        config.host = server.url
        api = client.ApiClient(config)
        container = {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "echo one; echo two; exit 5"]}
        client.BatchV1Api(api).create_namespaced_job("ns", {"metadata": {"name": "e2e"}, "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}})
        controllers.tick(1)
        [pod] = client.CoreV1Api(api).list_namespaced_pod("ns", label_selector="job-name=e2e").items
        controllers.tick(1)
        job = client.BatchV1Api(api).read_namespaced_job_status("e2e", "ns")
        assert job.status.failed == 1 and job.status.conditions[0].type == "Failed"
        pod = client.CoreV1Api(api).read_namespaced_pod(pod.metadata.name, "ns")
        assert pod.status.container_statuses[0].state.terminated.exit_code == 5
        log = client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, "ns", tail_lines=1,
                                                            _preload_content=False)
        assert log.data == b"two\n"
