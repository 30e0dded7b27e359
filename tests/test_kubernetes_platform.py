"""The Kubernetes platform driver on a real control plane (kube-apiserver, controller-manager, scheduler,
kwok, the Fargate emulation): copy with the Fargate transforms, converge exactly and idempotently, hand
CronJobs over, retire and restore blue."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from include.slow_injection.drivers.kubernetes import RETIRED_FROM, KubeAccess, KubernetesPlatform
from include.slow_injection.ports import JobStillActive
from tests.support.kube import wait_for
from tests.support.kube_support import blue_deployment


def blue_cronjob(namespace: str) -> dict:
    job = {
        "ttlSecondsAfterFinished": 300,
        "template": {
            "metadata": {"labels": {"app": "report"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "job", "image": "report:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
                ],
            },
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": namespace},
        "spec": {"schedule": "*/30 * * * *", "suspend": False, "jobTemplate": {"spec": job}},
    }


def edit(api: KubeAccess, kind: str, namespace: str, name: str, change) -> None:
    """Read, change, replace; again on a 409 (the controllers write the object too)."""
    from kubernetes.client.rest import ApiException

    for _ in range(10):
        obj = api.get(kind, namespace, name)
        change(obj)
        try:
            api.replace(kind, namespace, name, obj)
            return
        except ApiException as err:
            if err.status != 409:
                raise
    raise AssertionError(f"{kind} {namespace}/{name} kept changing under the test")


@pytest.fixture
def platform(kube):
    blue_ns, green_ns = kube.namespace("shop"), kube.namespace("green")
    api = KubeAccess(kube.api_client)
    api.create("Deployment", blue_ns, blue_deployment(blue_ns))
    api.create("CronJob", blue_ns, blue_cronjob(blue_ns))
    settings = KubernetesPlatform.Settings(add_labels={"compute": "fargate"})
    deployment = {"kind": "Deployment", "namespace": blue_ns, "name": "web", "green_namespace": green_ns}
    cronjob = {"kind": "CronJob", "namespace": blue_ns, "name": "report", "green_namespace": green_ns}
    yield KubernetesPlatform(api, api, settings), api, deployment, cronjob  # one cluster, two namespaces


def test_green_copy_gets_the_fargate_transforms_and_blue_size(platform) -> None:
    driver, api, web, _ = platform
    changes = driver.deploy_green(web, apply=True)
    assert [str(c) for c in changes] == [f"green Deployment {web['green_namespace']}/web: absent → replicas=3"]
    green = api.get("Deployment", web["green_namespace"], "web")
    pod = green["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "memory": "1Gi"},
        "requests": {"cpu": "1", "memory": "1Gi"},
    }
    assert green["spec"]["template"]["metadata"]["labels"] == {"app": "web", "compute": "fargate"}
    assert green["spec"]["replicas"] == 3
    pods = wait_for(
        lambda: (
            [
                p
                for p in api.list("CoreV1Api", "list_namespaced_pod", web["green_namespace"])
                if p["spec"].get("nodeName")
            ]
            if len(api.list("CoreV1Api", "list_namespaced_pod", web["green_namespace"])) == 3
            else None
        ),
        "three green pods placed",
    )
    assert {p["spec"]["schedulerName"] for p in pods} == {"fargate-scheduler"}
    assert {p["metadata"]["annotations"]["CapacityProvisioned"] for p in pods} == {"1vCPU 2GB"}
    wait_for(lambda: driver.rollout(web).state == "ready", "green rolled out")


def test_deploying_twice_changes_nothing_and_drift_is_converged(platform) -> None:
    driver, api, web, _ = platform
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)
    version = api.get("Deployment", green_ns, "web")["metadata"]["resourceVersion"]
    time.sleep(1)  # the controller's own writes (status, revision annotation) settle
    assert driver.deploy_green(web, apply=True) == []
    api.patch("Deployment", green_ns, "web", {"spec": {"replicas": 1}})
    assert len(driver.deploy_green(web, apply=True)) == 1
    assert api.get("Deployment", green_ns, "web")["spec"]["replicas"] == 3
    assert int(api.get("Deployment", green_ns, "web")["metadata"]["resourceVersion"]) > int(version)


def test_what_blue_drops_green_drops_too(platform) -> None:
    """A strategic merge patch never removes list entries; the converge replaces the object whole."""
    driver, api, web, _ = platform
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)

    def drop_old_flag(blue: dict) -> None:
        blue["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "blue"}]

    edit(api, "Deployment", web["namespace"], "web", drop_old_flag)
    assert [c.target for c in driver.deploy_green(web, apply=True)] == [f"green Deployment {green_ns}/web"]
    env = api.get("Deployment", green_ns, "web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODE", "value": "blue"}]
    assert driver.deploy_green(web, apply=True) == []  # and a second run changes nothing


def test_a_changed_selector_makes_a_new_green_object(platform) -> None:
    driver, api, web, _ = platform
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)
    uid = api.get("Deployment", green_ns, "web")["metadata"]["uid"]
    blue = api.get("Deployment", web["namespace"], "web")
    api.delete("Deployment", web["namespace"], "web")  # blue's selector is immutable too: blue was recreated
    wait_for(lambda: api.get("Deployment", web["namespace"], "web") is None, "blue deleted")
    labels = {"app": "web", "tier": "front"}
    blue["spec"]["selector"] = {"matchLabels": labels}
    blue["spec"]["template"]["metadata"]["labels"] = labels
    blue["metadata"] = {"name": "web", "namespace": web["namespace"], "labels": {"app": "web"}}
    api.create("Deployment", web["namespace"], blue)
    changes = driver.deploy_green(web, apply=True)
    assert len(changes) == 1 and "recreated with selector" in changes[0].after
    green = api.get("Deployment", green_ns, "web")
    assert green["metadata"]["uid"] != uid and green["spec"]["selector"] == {"matchLabels": labels}
    assert driver.deploy_green(web, apply=True) == []


def test_an_invalid_copy_names_the_object_and_field(platform) -> None:
    driver, api, web, _ = platform

    def cpu_only(blue: dict) -> None:
        blue["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}

    edit(api, "Deployment", web["namespace"], "web", cpu_only)
    settings = KubernetesPlatform.Settings(add_labels={"Bad Label!": "x"})
    with pytest.raises(ValueError, match=r"refused Deployment .*/web \(422 Invalid\): metadata.labels"):
        KubernetesPlatform(api, api, settings).deploy_green(web, apply=True)


def test_dry_run_plans_without_writing(platform) -> None:
    driver, api, web, _ = platform
    changes = driver.deploy_green(web, apply=False)
    assert changes and not changes[0].applied
    assert api.get("Deployment", web["green_namespace"], "web") is None


def test_cronjob_copy_is_created_suspended_and_handover_suspends_blue_first(platform) -> None:
    driver, api, _, job = platform
    blue_ns, green_ns = job["namespace"], job["green_namespace"]
    driver.deploy_green(job, apply=True)
    assert api.get("CronJob", green_ns, "report")["spec"]["suspend"] is True
    changes = driver.activate(job, "green", apply=True)
    assert [c.target for c in changes] == [f"blue CronJob {blue_ns}/report", f"green CronJob {green_ns}/report"]
    assert api.get("CronJob", blue_ns, "report")["spec"]["suspend"] is True
    assert api.get("CronJob", green_ns, "report")["spec"]["suspend"] is False
    assert driver.deploy_green(job, apply=True) == []  # a re-run never re-suspends green
    assert driver.activate(job, "green", apply=True) == []
    stop = driver.restore_blue(job, apply=True)  # rollback's first step: green starts no new run
    assert [c.target for c in stop] == [f"green CronJob {green_ns}/report"]
    assert api.get("CronJob", blue_ns, "report")["spec"]["suspend"] is True  # blue waits for green to be idle
    back = driver.activate(job, "blue", apply=True)
    assert [c.target for c in back] == [f"blue CronJob {blue_ns}/report"]
    assert api.get("CronJob", blue_ns, "report")["spec"]["suspend"] is False
    assert api.get("CronJob", green_ns, "report")["spec"]["suspend"] is True


def owned_job(
    api: KubeAccess,
    namespace: str,
    cronjob: str,
    name: str,
    *,
    run_ms: int = 0,
    fail: bool = False,
    scheduled: str | None = None,
) -> dict:
    """A Job the way the CronJob controller makes one (owner reference, scheduled-timestamp); kwok's
    upstream pod stages run its pod: complete after `run_ms`, or fail."""
    owner = api.get("CronJob", namespace, cronjob)
    annotations = {"pod-complete.stage.kwok.x-k8s.io/delay": f"{run_ms}ms"}
    labels = {"pod-container-running-failed.stage.kwok.x-k8s.io": "true"} if fail else {}
    if fail:
        annotations["pod-container-running-failed.stage.kwok.x-k8s.io/delay"] = "500ms"
    meta = {
        "name": name,
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob,
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ],
    }
    if scheduled:
        meta["annotations"] = {"batch.kubernetes.io/cronjob-scheduled-timestamp": scheduled}
    body = {
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations, "labels": labels},
                "spec": {"containers": [{"name": "job", "image": "report:1"}], "restartPolicy": "Never"},
            },
        },
    }
    return client.BatchV1Api(api.api_client).create_namespaced_job(namespace, body)


def test_a_job_never_resumes_on_one_side_while_the_other_side_still_runs_one(platform) -> None:
    driver, api, _, job = platform
    blue_ns, green_ns = job["namespace"], job["green_namespace"]
    driver.deploy_green(job, apply=True)
    driver.activate(job, "green", apply=True)
    owned_job(api, green_ns, "report", "report-7", run_ms=8000)  # status.active lags; the Job is there
    driver.restore_blue(job, apply=True)
    with pytest.raises(JobStillActive, match=f"green Job report-7 of CronJob {green_ns}/report is still running"):
        driver.activate(job, "blue", apply=True)
    assert api.get("CronJob", blue_ns, "report")["spec"]["suspend"] is True  # blue still waits
    assert api.get("CronJob", green_ns, "report")["spec"]["suspend"] is True
    wait_for(
        lambda: driver.handover_moment({**job, "namespace": green_ns}, 0).state == "ready" or None,
        "green's Job to finish",
        timeout=40,
    )
    assert [c.target for c in driver.activate(job, "blue", apply=True)] == [f"blue CronJob {blue_ns}/report"]


def test_the_newest_scheduled_time_comes_from_the_jobs_when_status_lags(platform) -> None:
    """The controller writes lastScheduleTime after creating the Job; a suspend between loses that write."""
    driver, api, _, job = platform
    blue_ns, green_ns = job["namespace"], job["green_namespace"]
    api.patch("CronJob", blue_ns, "report", {"spec": {"schedule": "0 3 29 2 *"}})  # no tick of its own meanwhile
    driver.deploy_green(job, apply=True)
    owned_job(api, blue_ns, "report", "report-1", scheduled="2026-01-01T10:00:00Z")
    wait_for(lambda: driver.handover_moment(job, 0).state == "ready" or None, "blue's Job to finish")
    changes = driver.activate(job, "green", apply=True)
    assert f"green CronJob {green_ns}/report: lastScheduleTime=None → lastScheduleTime=2026-01-01T10:00:00Z" in [
        str(c) for c in changes
    ]
    assert api.get("CronJob", green_ns, "report")["status"]["lastScheduleTime"] == "2026-01-01T10:00:00Z"


def test_config_maps_the_pod_names_and_listed_services_are_copied_once(platform) -> None:
    driver, api, web, _ = platform
    blue_ns, green_ns = web["namespace"], web["green_namespace"]
    core = client.CoreV1Api(api.api_client)
    for name in ("web-env", "web-files", "web-key"):
        core.create_namespaced_config_map(blue_ns, {"metadata": {"name": name}, "data": {"k": name}})
    core.create_namespaced_config_map(blue_ns, {"metadata": {"name": "unrelated"}, "data": {}})
    core.create_namespaced_service(
        blue_ns,
        {
            "metadata": {
                "name": "web",
                "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "external"},
            },
            "spec": {"selector": {"app": "web"}, "type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    core.create_namespaced_service(
        blue_ns,
        {
            "metadata": {"name": "web-peers"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "None", "ports": [{"port": 7000}]},
        },
    )

    def refer_to_config_maps(deployment: dict) -> None:
        pod = deployment["spec"]["template"]["spec"]
        pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-env"}}]
        pod["containers"][0]["env"] = [
            {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "web-key", "key": "k"}}}
        ]
        pod["volumes"] = [{"name": "files", "configMap": {"name": "web-files"}}]

    edit(api, "Deployment", blue_ns, "web", refer_to_config_maps)
    workload = {**web, "copy_config_maps": True, "copy_services": ["web", "web-peers"]}

    first = [c.target for c in driver.deploy_green(workload, apply=True)]
    assert first == [
        f"green Service {green_ns}/web",
        f"green Service {green_ns}/web-peers",
        f"green ConfigMap {green_ns}/web-env",
        f"green ConfigMap {green_ns}/web-files",
        f"green ConfigMap {green_ns}/web-key",
        f"green Deployment {green_ns}/web",
    ]
    assert api.get("ConfigMap", green_ns, "unrelated") is None
    service = api.get("Service", green_ns, "web")
    blue_service = api.get("Service", blue_ns, "web")
    assert service["spec"]["clusterIP"] != blue_service["spec"]["clusterIP"]  # green's own allocation
    assert service["metadata"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-type": "external"}
    assert api.get("Service", green_ns, "web-peers")["spec"]["clusterIP"] == "None"  # still headless
    assert driver.deploy_green(workload, apply=True) == []  # idempotent
    core.patch_namespaced_config_map("web-env", blue_ns, {"data": {"k": "changed on blue"}})
    assert [str(c) for c in driver.deploy_green(workload, apply=True)] == [
        f"green ConfigMap {green_ns}/web-env: drifted → same as blue"
    ]
    with pytest.raises(LookupError, match=f"blue Service {blue_ns}/api does not exist"):
        driver.deploy_green({**workload, "copy_services": ["api"]}, apply=True)


def test_placement_that_drifts_onto_green_is_removed_again(platform) -> None:
    driver, api, web, _ = platform
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)
    api.patch("Deployment", green_ns, "web", {"spec": {"template": {"spec": {"nodeSelector": {"node-group": "ec2"}}}}})
    assert [c.target for c in driver.deploy_green(web, apply=True)] == [f"green Deployment {green_ns}/web"]
    assert "nodeSelector" not in api.get("Deployment", green_ns, "web")["spec"]["template"]["spec"]
    assert driver.deploy_green(web, apply=True) == []


def test_a_rerun_copy_after_blue_was_retired_keeps_green_at_blue_s_former_size(platform) -> None:
    driver, api, web, _ = platform
    driver.deploy_green(web, apply=True)
    driver.retire_blue(web, apply=True)
    assert driver.deploy_green(web, apply=True) == []  # not scaled to blue's 0
    assert api.get("Deployment", web["green_namespace"], "web")["spec"]["replicas"] == 3


def test_retire_then_restore_blue_uses_the_recorded_size(platform) -> None:
    driver, api, web, _ = platform
    assert [str(c) for c in driver.retire_blue(web, apply=True)] == [
        f"blue Deployment {web['namespace']}/web: replicas=3 → replicas=0"
    ]
    blue = api.get("Deployment", web["namespace"], "web")
    assert blue["spec"]["replicas"] == 0 and blue["metadata"]["annotations"][RETIRED_FROM] == "3"
    assert driver.retire_blue(web, apply=True) == []
    assert len(driver.restore_blue(web, apply=True)) == 1
    assert api.get("Deployment", web["namespace"], "web")["spec"]["replicas"] == 3
    assert driver.restore_blue(web, apply=True) == []


def test_preflight_sees_the_green_copy_as_fargate_would(platform) -> None:
    driver, api, web, _ = platform
    apps = client.AppsV1Api(api.api_client)
    apps.create_namespaced_daemon_set(
        web["namespace"],
        {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "a", "image": "a"}]},
                },
            },
        },
    )
    findings = driver.preflight(web)
    assert any("no PodDisruptionBudget" in f for f in findings)
    assert any("DaemonSet" in f and "agent" in f for f in findings), findings
    assert not any("None is not a workload" in f for f in findings)  # list items carry no kind
    assert not any("must equal its limit" in f for f in findings)  # requests = limits is a declared transform
    with pytest.raises(LookupError, match=f"blue Deployment {web['namespace']}/nope does not exist"):
        driver.preflight({**web, "name": "nope"})


def test_rollout_reads_the_real_deployment_controller(platform) -> None:
    driver, api, web, _ = platform
    green_ns = web["green_namespace"]
    assert driver.rollout(web).state == "waiting"  # no green copy yet
    driver.deploy_green(web, apply=True)
    wait_for(lambda: driver.rollout(web).state == "ready", "the green Deployment rolled out on Fargate")
    # Too big for any Fargate size: its pods stay Pending and the controller gives up after the deadline.
    api.patch(
        "Deployment",
        green_ns,
        "web",
        {
            "spec": {
                "progressDeadlineSeconds": 2,
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "resources": {"requests": {"cpu": "32"}, "limits": {"cpu": "32"}}}
                        ]
                    }
                },
            }
        },
    )
    reading = driver.rollout(web)
    assert reading.state == "waiting"  # the old generation's conditions do not count
    failed = wait_for(
        lambda: (r := driver.rollout(web)).state == "failed" and r, "ProgressDeadlineExceeded", timeout=40
    )
    assert "progress deadline exceeded" in failed.detail


def test_first_run_reads_the_real_job_controller(platform) -> None:
    driver, api, _, job = platform
    green_ns = job["green_namespace"]
    driver.deploy_green(job, apply=True)
    since = time.time() - 5
    assert driver.first_run(job, "green", since).state == "waiting"
    owned_job(api, green_ns, "report", "report-1", fail=True)
    wait_for(lambda: driver.first_run(job, "green", since).state == "failed", "the failed Job")
    client.BatchV1Api(api.api_client).delete_namespaced_job("report-1", green_ns, propagation_policy="Background")
    fresh = KubernetesPlatform(api, api, driver.settings)
    wait_for(lambda: fresh.first_run(job, "green", since).state == "waiting", "the Job gone")
    owned_job(api, green_ns, "report", "report-2", run_ms=1500)
    assert (
        wait_for(lambda: (r := fresh.first_run(job, "green", since)).state != "waiting" and r, "the Job's end").state
        == "ready"
    )
    missed = KubernetesPlatform(api, api, driver.settings).first_run(job, "green", time.time() - 7200)
    assert missed.state in ("ready", "failed")


def test_a_watch_counts_jobs_that_ttl_deleted_while_it_watched(platform) -> None:
    driver, api, _, job = platform
    green_ns = job["green_namespace"]
    driver.deploy_green(job, apply=True)
    since = time.time() - 1
    limits = {"runs": 2, "min_success_rate": 1.0}
    owned_job(api, green_ns, "report", "report-1")
    wait_for(lambda: "1 finished" in driver.watch_jobs(job, "green", since, limits).detail, "the first run")
    client.BatchV1Api(api.api_client).delete_namespaced_job("report-1", green_ns, propagation_policy="Background")
    wait_for(
        lambda: (
            api.get("CronJob", green_ns, "report")
            and not [j for j in api.list("BatchV1Api", "list_namespaced_job", green_ns)]
        ),
        "the history limit's delete",
    )
    owned_job(api, green_ns, "report", "report-2")
    reading = wait_for(
        lambda: (r := driver.watch_jobs(job, "green", since, limits)).state == "ready" and r, "two runs counted"
    )
    assert "2 finished run(s) (2 succeeded)" in reading.detail


def test_handover_moment_reads_blue(platform) -> None:
    driver, api, _, job = platform
    owned_job(api, job["namespace"], "report", "report-9", run_ms=5000)
    moment = driver.handover_moment(job, 0)
    assert moment.state == "waiting" and "report-9" in moment.detail
