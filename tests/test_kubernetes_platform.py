"""The Kubernetes platform driver over real HTTP (official client → the API test server): copy with the
Fargate transforms, converge idempotently, hand CronJobs over, retire and restore blue."""

from __future__ import annotations

import pytest
from kubernetes import config

from include.slow_injection.drivers.kubernetes import RETIRED_FROM, KubeAccess, KubernetesPlatform
from include.slow_injection.ports import JobStillActive
from include.slow_injection.lab.kube.api_server import KubernetesTestServer

DEPLOYMENT = {"kind": "Deployment", "namespace": "shop", "name": "web", "green_namespace": "shop-fargate"}
CRONJOB = {"kind": "CronJob", "namespace": "shop", "name": "report", "green_namespace": "shop-fargate"}


def blue_deployment() -> dict:
    pod = {"nodeSelector": {"node-group": "ec2"}, "tolerations": [{"key": "spot", "operator": "Exists"}],
           "containers": [{"name": "app", "image": "web:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                                          "requests": {"cpu": "250m"}}}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod}}}


def blue_cronjob() -> dict:
    job = {"ttlSecondsAfterFinished": 300, "template": {"metadata": {"labels": {"app": "report"}}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "job", "image": "report:1",
                                                  "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "shop"},
            "spec": {"schedule": "*/1 * * * *", "suspend": False, "jobTemplate": {"spec": job}}}


@pytest.fixture
def platform():  # noqa: ANN201
    with KubernetesTestServer() as server:
        api = KubeAccess(config.new_client_from_config_dict(server.kubeconfig()))
        api.create("Deployment", "shop", blue_deployment())
        api.create("CronJob", "shop", blue_cronjob())
        settings = KubernetesPlatform.Settings(add_labels={"compute": "fargate"})
        yield KubernetesPlatform(api, api, settings), api  # one cluster, two namespaces


def test_green_copy_gets_the_fargate_transforms_and_blue_size(platform) -> None:  # noqa: ANN001
    driver, api = platform
    changes = driver.deploy_green(DEPLOYMENT, apply=True)
    assert [str(c) for c in changes] == ["green Deployment shop-fargate/web: absent → replicas=3"]
    green = api.get("Deployment", "shop-fargate", "web")
    pod = green["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"},
                                                 "requests": {"cpu": "1", "memory": "1Gi"}}
    assert green["spec"]["template"]["metadata"]["labels"] == {"app": "web", "compute": "fargate"}
    assert green["spec"]["replicas"] == 3


def test_deploying_twice_changes_nothing_and_drift_is_converged(platform) -> None:  # noqa: ANN001
    driver, api = platform
    driver.deploy_green(DEPLOYMENT, apply=True)
    version = api.get("Deployment", "shop-fargate", "web")["metadata"]["resourceVersion"]
    assert driver.deploy_green(DEPLOYMENT, apply=True) == []
    assert api.get("Deployment", "shop-fargate", "web")["metadata"]["resourceVersion"] == version
    api.patch("Deployment", "shop-fargate", "web", {"spec": {"replicas": 1}})
    assert len(driver.deploy_green(DEPLOYMENT, apply=True)) == 1
    assert api.get("Deployment", "shop-fargate", "web")["spec"]["replicas"] == 3


def test_dry_run_plans_without_writing(platform) -> None:  # noqa: ANN001
    driver, api = platform
    changes = driver.deploy_green(DEPLOYMENT, apply=False)
    assert changes and not changes[0].applied
    assert api.get("Deployment", "shop-fargate", "web") is None


def test_cronjob_copy_is_created_suspended_and_handover_suspends_blue_first(platform) -> None:  # noqa: ANN001
    driver, api = platform
    driver.deploy_green(CRONJOB, apply=True)
    assert api.get("CronJob", "shop-fargate", "report")["spec"]["suspend"] is True
    changes = driver.activate(CRONJOB, "green", apply=True)
    assert [c.target for c in changes] == ["blue CronJob shop/report", "green CronJob shop-fargate/report"]
    assert api.get("CronJob", "shop", "report")["spec"]["suspend"] is True
    assert api.get("CronJob", "shop-fargate", "report")["spec"]["suspend"] is False
    assert driver.deploy_green(CRONJOB, apply=True) == []  # a re-run never re-suspends green
    assert driver.activate(CRONJOB, "green", apply=True) == []
    stop = driver.restore_blue(CRONJOB, apply=True)  # rollback's first step: green starts no new run
    assert [c.target for c in stop] == ["green CronJob shop-fargate/report"]
    assert api.get("CronJob", "shop", "report")["spec"]["suspend"] is True  # blue waits for green to be idle
    back = driver.activate(CRONJOB, "blue", apply=True)
    assert [c.target for c in back] == ["blue CronJob shop/report"]
    assert api.get("CronJob", "shop", "report")["spec"]["suspend"] is False
    assert api.get("CronJob", "shop-fargate", "report")["spec"]["suspend"] is True


def test_a_job_never_resumes_on_one_side_while_the_other_side_still_runs_one(platform) -> None:  # noqa: ANN001
    from kubernetes import client

    driver, api = platform
    driver.deploy_green(CRONJOB, apply=True)
    driver.activate(CRONJOB, "green", apply=True)
    batch = client.BatchV1Api(api.api_client)
    batch.patch_namespaced_cron_job_status("report", "shop-fargate", {"status": {"active": [{"name": "report-7"}]}})
    driver.restore_blue(CRONJOB, apply=True)
    with pytest.raises(JobStillActive, match="green Job report-7 of CronJob shop-fargate/report is still running"):
        driver.activate(CRONJOB, "blue", apply=True)
    assert api.get("CronJob", "shop", "report")["spec"]["suspend"] is True  # blue still waits
    assert api.get("CronJob", "shop-fargate", "report")["spec"]["suspend"] is True
    batch.patch_namespaced_cron_job_status("report", "shop-fargate", {"status": {"active": None}})
    assert [c.target for c in driver.activate(CRONJOB, "blue", apply=True)] == ["blue CronJob shop/report"]


def test_config_maps_the_pod_names_and_listed_services_are_copied_once(platform) -> None:  # noqa: ANN001
    driver, api = platform
    from kubernetes import client

    core = client.CoreV1Api(api.api_client)
    for name in ("web-env", "web-files", "web-key"):
        core.create_namespaced_config_map("shop", {"metadata": {"name": name}, "data": {"k": name}})
    core.create_namespaced_config_map("shop", {"metadata": {"name": "unrelated"}, "data": {}})
    core.create_namespaced_service("shop", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "clusterIP": "10.0.0.7", "type": "NodePort",
        "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}})
    deployment = api.get("Deployment", "shop", "web")
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-env"}}]
    pod["containers"][0]["env"] = [{"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "web-key", "key": "k"}}}]
    pod["volumes"] = [{"name": "files", "configMap": {"name": "web-files"}}]
    api.patch("Deployment", "shop", "web", {"spec": {"template": {"spec": pod}}})
    workload = {**DEPLOYMENT, "copy_config_maps": True, "copy_services": ["web"]}

    first = [c.target for c in driver.deploy_green(workload, apply=True)]
    assert first == ["green Service shop-fargate/web", "green ConfigMap shop-fargate/web-env",
                     "green ConfigMap shop-fargate/web-files", "green ConfigMap shop-fargate/web-key",
                     "green Deployment shop-fargate/web"]
    assert api.get("ConfigMap", "shop-fargate", "unrelated") is None
    service = api.get("Service", "shop-fargate", "web")
    assert "clusterIP" not in service["spec"] and "nodePort" not in service["spec"]["ports"][0]
    assert driver.deploy_green(workload, apply=True) == []  # idempotent
    core.patch_namespaced_config_map("web-env", "shop", {"data": {"k": "changed on blue"}})
    assert [str(c) for c in driver.deploy_green(workload, apply=True)] == [
        "green ConfigMap shop-fargate/web-env: drifted → same as blue"]
    with pytest.raises(LookupError, match="blue Service shop/api does not exist"):
        driver.deploy_green({**workload, "copy_services": ["api"]}, apply=True)


def test_placement_that_drifts_onto_green_is_removed_again(platform) -> None:  # noqa: ANN001
    driver, api = platform
    driver.deploy_green(DEPLOYMENT, apply=True)
    api.patch("Deployment", "shop-fargate", "web", {"spec": {"template": {"spec": {
        "nodeSelector": {"node-group": "ec2"}}}}})
    assert [c.target for c in driver.deploy_green(DEPLOYMENT, apply=True)] == ["green Deployment shop-fargate/web"]
    assert "nodeSelector" not in api.get("Deployment", "shop-fargate", "web")["spec"]["template"]["spec"]
    assert driver.deploy_green(DEPLOYMENT, apply=True) == []


def test_a_rerun_copy_after_blue_was_retired_keeps_green_at_blue_s_former_size(platform) -> None:  # noqa: ANN001
    driver, api = platform
    driver.deploy_green(DEPLOYMENT, apply=True)
    driver.retire_blue(DEPLOYMENT, apply=True)
    assert driver.deploy_green(DEPLOYMENT, apply=True) == []  # not scaled to blue's 0
    assert api.get("Deployment", "shop-fargate", "web")["spec"]["replicas"] == 3


def test_retire_then_restore_blue_uses_the_recorded_size(platform) -> None:  # noqa: ANN001
    driver, api = platform
    assert [str(c) for c in driver.retire_blue(DEPLOYMENT, apply=True)] == [
        "blue Deployment shop/web: replicas=3 → replicas=0"]
    blue = api.get("Deployment", "shop", "web")
    assert blue["spec"]["replicas"] == 0 and blue["metadata"]["annotations"][RETIRED_FROM] == "3"
    assert driver.retire_blue(DEPLOYMENT, apply=True) == []
    assert len(driver.restore_blue(DEPLOYMENT, apply=True)) == 1
    assert api.get("Deployment", "shop", "web")["spec"]["replicas"] == 3
    assert driver.restore_blue(DEPLOYMENT, apply=True) == []


def test_preflight_sees_the_green_copy_as_fargate_would(platform) -> None:  # noqa: ANN001
    driver, api = platform
    findings = driver.preflight(DEPLOYMENT)
    assert any("no PodDisruptionBudget" in f for f in findings)
    assert not any("must equal its limit" in f for f in findings)  # requests = limits is a declared transform
    with pytest.raises(LookupError, match="blue Deployment shop/nope does not exist"):
        driver.preflight({**DEPLOYMENT, "name": "nope"})


def test_rollout_and_first_run_readings(platform) -> None:  # noqa: ANN001
    import time

    driver, api = platform
    assert driver.rollout(DEPLOYMENT).state == "waiting"  # no green copy yet
    driver.deploy_green(DEPLOYMENT, apply=True)
    assert driver.rollout(DEPLOYMENT).state == "waiting"  # the controller has not reported
    from kubernetes import client

    apps = client.AppsV1Api(api.api_client)
    apps.patch_namespaced_deployment_status("web", "shop-fargate", {"status": {
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}})
    assert driver.rollout(DEPLOYMENT).state == "ready"
    apps.patch_namespaced_deployment_status("web", "shop-fargate", {"status": {"conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}})
    assert driver.rollout(DEPLOYMENT).state == "failed"

    driver.deploy_green(CRONJOB, apply=True)
    since = time.time() - 5
    assert driver.first_run(CRONJOB, "green", since).state == "waiting"
    batch = client.BatchV1Api(api.api_client)
    job = {"metadata": {"name": "report-1", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                                                 "name": "report", "uid": "x"}]},
           "spec": {"template": {"spec": {"containers": [{"name": "job", "image": "report:1"}],
                                          "restartPolicy": "Never"}}}}
    batch.create_namespaced_job("shop-fargate", job)
    assert driver.first_run(CRONJOB, "green", since).state == "waiting"  # running
    batch.patch_namespaced_job_status("report-1", "shop-fargate",
                                      {"status": {"conditions": [{"type": "Failed", "status": "True"}]}})
    assert driver.first_run(CRONJOB, "green", since).state == "failed"
    batch.patch_namespaced_job_status("report-1", "shop-fargate",
                                      {"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    assert driver.first_run(CRONJOB, "green", since).state == "ready"
    long_ago = time.time() - 3600
    batch.delete_namespaced_job("report-1", "shop-fargate")
    missed = driver.first_run(CRONJOB, "green", long_ago)
    assert missed.state == "failed" and "missed" in missed.detail


def test_handover_moment_reads_blue(platform) -> None:  # noqa: ANN001
    driver, api = platform
    from kubernetes import client

    client.BatchV1Api(api.api_client).patch_namespaced_cron_job_status(
        "report", "shop", {"status": {"active": [{"name": "report-9"}]}})
    moment = driver.handover_moment(CRONJOB, 0)
    assert moment.state == "waiting" and "still active" in moment.detail
