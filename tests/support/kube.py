"""The real control plane under the Kubernetes tests (envtest's habit): one per pytest process, started on
first use (etcd, kube-apiserver, controller-manager, scheduler, kwok, the Fargate emulation), a namespace
of its own for every test, logs kept in its folder (printed when a test fails)."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.lab.kube.control_plane import ControlPlane
from include.slow_injection.lab.kube.fargate import set_profiles

# The Fargate profile every test's cluster has: namespaces made with kube.namespace("green") run on Fargate.
GREEN_PROFILE = {"name": "fp-green", "selectors": [{"namespace": "green-*"}]}


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    root = Path(tempfile.mkdtemp(prefix="slow-injection-kube-"))
    plane = ControlPlane(root).start()
    print(f"control plane up in {plane.started_in:.1f} s (logs: {plane.logs})")
    set_profiles(plane.api_client(), [GREEN_PROFILE])
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def gateway_api(control_plane: ControlPlane) -> list[str]:
    """The Gateway API's standard-channel CRDs (sigs.k8s.io/gateway-api, fetched by deploy/kube/build.sh)
    installed into the session's control plane, Established; their names."""
    from include.slow_injection.lab.kube.gateway_api_crds import crds_path, install

    return install(control_plane.api_client(), crds_path(control_plane))


@dataclass
class Kube:
    """One test's view of the cluster: unique namespaces, the admin client, kubeconfig files."""

    plane: ControlPlane
    made: list[str] = field(default_factory=list)

    @property
    def api_client(self) -> Any:
        return self.plane.api_client()

    def namespace(
        self, prefix: str = "t", labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
    ) -> str:
        """A new namespace, once its default ServiceAccount exists (pods need it)."""
        from kubernetes import client

        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        core = client.CoreV1Api(self.api_client)
        core.create_namespace({"metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}})
        self.made.append(name)
        wait_for(
            lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
            f"the default ServiceAccount of {name}",
        )
        return name

    def kubeconfig_file(self, user: str = "admin", token: str | None = None, name: str | None = None) -> Path:
        return self.plane.kubeconfig_file(user, token, name)

    def connection(self, monkeypatch: pytest.MonkeyPatch, conn_id: str, kubeconfig: Path | None = None) -> None:
        """An Airflow connection (env var) reaching the cluster through the KubernetesHook."""
        path = kubeconfig or self.kubeconfig_file()
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(path)}}),
        )

    def cleanup(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        for name in self.made:
            try:
                core.delete_namespace(name)
            except Exception:
                pass


@pytest.fixture
def kube(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[Kube]:
    view = Kube(control_plane)
    yield view
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"control-plane logs: {control_plane.logs}")
    view.cleanup()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until `check()` is truthy; on timeout say what was awaited and what was last seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
