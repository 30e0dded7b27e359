"""The Kubernetes API test server answers the official client the way a cluster would (for what the
drivers use), so the Kubernetes driver can be tested over real HTTP without a cluster."""

from __future__ import annotations

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from include.slow_injection.lab.kube.api_server import KubernetesTestServer


@pytest.fixture
def api():  # noqa: ANN201
    with KubernetesTestServer() as server:
        api_client = config.new_client_from_config_dict(server.kubeconfig())
        yield server, api_client


def deployment(name: str = "web", replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels),
                                              spec=client.V1PodSpec(containers=[client.V1Container(name="app",
                                                                                                   image="web:1")]))))


def test_namespaces_and_deployments_round_trip(api) -> None:  # noqa: ANN001
    server, api_client = api
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="shop")))
    assert [n.metadata.name for n in core.list_namespace().items] == ["shop"]
    created = apps.create_namespaced_deployment("shop", deployment())
    assert created.metadata.uid and created.metadata.generation == 1
    got = apps.read_namespaced_deployment("web", "shop")
    assert got.spec.replicas == 2 and got.spec.template.spec.containers[0].image == "web:1"
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment("shop", deployment())
    assert exists.value.status == 409
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", "shop")
    assert missing.value.status == 404


def test_patch_scale_status_and_generation(api) -> None:  # noqa: ANN001
    server, api_client = api
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("shop", deployment())
    patched = apps.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "front"} and patched.metadata.generation == 1
    image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}}
    assert apps.patch_namespaced_deployment("web", "shop", image).metadata.generation == 2
    scale = apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5
    assert apps.read_namespaced_deployment_scale("web", "shop").spec.replicas == 5
    status = {"status": {"observedGeneration": 3, "replicas": 5, "readyReplicas": 5, "updatedReplicas": 5,
                         "availableReplicas": 5}}
    apps.patch_namespaced_deployment_status("web", "shop", status)
    assert apps.read_namespaced_deployment_status("web", "shop").status.ready_replicas == 5


def test_label_selectors_and_cronjobs(api) -> None:  # noqa: ANN001
    server, api_client = api
    apps, batch = client.AppsV1Api(api_client), client.BatchV1Api(api_client)
    for name in ("web", "api", "worker"):
        apps.create_namespaced_deployment("shop", deployment(name))
    assert [d.metadata.name for d in apps.list_namespaced_deployment("shop", label_selector="app=api").items] == ["api"]
    assert len(apps.list_namespaced_deployment("shop", label_selector="app in (web, worker)").items) == 2
    assert len(apps.list_namespaced_deployment("shop", label_selector="app!=web").items) == 2
    job_template = client.V1JobTemplateSpec(spec=client.V1JobSpec(template=client.V1PodTemplateSpec(
        spec=client.V1PodSpec(containers=[client.V1Container(name="job", image="job:1")], restart_policy="Never"))))
    batch.create_namespaced_cron_job("shop", client.V1CronJob(
        metadata=client.V1ObjectMeta(name="report"),
        spec=client.V1CronJobSpec(schedule="*/1 * * * *", job_template=job_template, suspend=False)))
    suspended = batch.patch_namespaced_cron_job("report", "shop", {"spec": {"suspend": True}})
    assert suspended.spec.suspend is True
    batch.delete_namespaced_cron_job("report", "shop")
    assert batch.list_namespaced_cron_job("shop").items == []


def test_the_providers_kubernetes_hook_reaches_it_through_a_kubeconfig(tmp_path) -> None:  # noqa: ANN001
    import yaml
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    with KubernetesTestServer() as server:
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(server.kubeconfig()))
        hook = KubernetesHook(config_file=str(path), conn_id=None)
        core = client.CoreV1Api(hook.get_conn())
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="green")))
        assert [n.metadata.name for n in core.list_namespace().items] == ["green"]
