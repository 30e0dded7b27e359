"""The e2e test Job on kwok: its outcome, its log, a task context to run it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

CONN = "kube_e2e"
IMAGE = "registry.example/shop-e2e:1.4"
FAILS = "pod-container-running-failed.stage.kwok.x-k8s.io"  # upstream kwok chaos stage: fail with an exit code
COMPLETES = "pod-complete.stage.kwok.x-k8s.io"  # kwok pod-complete stages: exit 0 after a delay


def outcome(exit_code: int, runs_ms: int | None = None) -> dict[str, dict[str, str]]:
    """The pod labels/annotations that make kwok end the test container with `exit_code` after `runs_ms`
    (default 1 s)."""
    labels = {FAILS: "true"} if exit_code else {}
    annotations = {f"{FAILS}/exit-code": str(exit_code)} if exit_code else {}
    if runs_ms is not None:
        annotations[f"{FAILS if exit_code else COMPLETES}/delay"] = f"{runs_ms}ms"
    return {"labels": labels, "annotations": annotations}


def cri_log(lines: list[str]) -> str:
    """Lines in the container runtime's log file format, the one a kubelet (and kwok) serves."""
    start = dt.datetime.now(dt.UTC)
    return "".join(
        f"{(start + dt.timedelta(milliseconds=i)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} stdout F {line}\n"
        for i, line in enumerate(lines)
    )


@pytest.fixture
def container_log(kube, tmp_path: Path) -> Iterator[Callable[[str, list[str]], Path]]:
    """`write(namespace, lines)`: what the `base` container of every pod in `namespace` logged, served by
    kwok through a ClusterLogs object (cluster-scoped, so removed here after the test)."""
    api = client.CustomObjectsApi(kube.api_client)
    made: list[str] = []

    def write(namespace: str, lines: list[str]) -> Path:
        path = tmp_path / f"{namespace}-base.log"
        path.write_text(cri_log(lines))
        name = f"e2e-log-{namespace}"
        api.create_cluster_custom_object(
            "kwok.x-k8s.io",
            "v1alpha1",
            "clusterlogs",
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "ClusterLogs",
                "metadata": {"name": name},
                "spec": {
                    "selector": {"matchNamespaces": [namespace]},
                    "logs": [{"containers": ["base"], "logsFile": str(path)}],
                },
            },
        )
        made.append(name)
        return path

    yield write
    for name in made:
        api.delete_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterlogs", name)


def e2e_test(namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "smoke",
        "image": IMAGE,
        "command": ["pytest", "-q"],
        "args": [],
        "env": {},
        "namespace": namespace,
        "connection": CONN,
        "timeout": 30,
        "log_tail_lines": 50,
        **extra,
    }


class _FakeTI:
    """Just what the operator asks of a task instance outside a DAG run."""

    dag_id, task_id, run_id, map_index, try_number = "wave_e2e", "e2e_smoke", "manual__fake", -1, 1

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value

    def xcom_pull(self, **_):
        return None


def fake_context() -> dict:
    class Dag:
        dag_id = "wave_e2e"

    return {"ti": _FakeTI(), "run_id": "manual__fake", "dag": Dag(), "params": {"dry_run": False}}
