"""The configuration-drift gate: blue's and green's live objects compared, minus the copy's Fargate
transforms and the spec's declared drift. Pure comparison, the Kubernetes driver on a real control plane
(kube-apiserver with its server-side defaults, the controllers, kwok, the Fargate emulation; official
client over HTTPS), the simulated driver, the spec rules, and one whole wave (dag.test) whose green image
drifted (a mutating admission webhook rewrites it, as an admission policy on green would): the gate fails
naming it, traffic never moves, the rollback runs, and a Secret's value appears nowhere (log, XCom,
exception, world, report). The driver's own least-privilege Role is enough for the gate.

Moved from the old stand-in API server: green's image is now rewritten by a real admission webhook
instead of a hook in the stand-in's store; nothing was dropped."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.kubernetes.drift import (
    Declared,
    Side,
    Transforms,
    compare,
    differences,
    fingerprint,
    references,
    selects,
)
from include.slow_injection.kubernetes.transforms import to_green
from tests.support.kube import wait_for
from tests.support.kube_support import kubernetes_wave_frame
from tests.support.waves import metric_gate, sim

BLUE_SECRET, GREEN_SECRET = "blue-pa55word-xyzzy", "green-pa55word-plugh"
TRANSFORMS = Transforms("shop-fargate", {"compute": "fargate"})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def short_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def blue_web(namespace: str = "shop") -> dict:
    app = {
        "name": "app",
        "image": "registry.example/web:1.4.2",
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "password"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "web-env", "key": "mode"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "web-env"}}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": 8080}},
    }
    init = {"name": "migrate", "image": "registry.example/web-migrate:1.4.2"}
    pod = {
        "nodeSelector": {"eks.amazonaws.com/nodegroup": "ec2-general"},
        "tolerations": [{"key": "spot", "operator": "Exists"}],
        "initContainers": [init],
        "containers": [app],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
        },
    }


def config_map(namespace: str, mode: str = "fast") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-env", "namespace": namespace},
        "data": {"mode": mode, "REGION": "eu-west-1"},
    }


def secret(namespace: str, value: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-secrets", "namespace": namespace},
        "type": "Opaque",
        "data": {"password": b64(value)},
    }


def service(namespace: str, target_port: int = 8080) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": target_port, "protocol": "TCP"}],
        },
    }


def sides(green_edit=None, green_secret: str = BLUE_SECRET, green_mode: str = "fast") -> tuple[Side, Side]:
    """Blue, and green as the driver copies it (plus `green_edit` applied to green's workload)."""
    blue = Side(
        blue_web(),
        {"web-env": config_map("shop")},
        {"web-secrets": secret("shop", BLUE_SECRET)},
        {"web": service("shop")},
    )
    green_obj = to_green(blue_web(), "shop-fargate", {"compute": "fargate"})
    if green_edit:
        green_edit(green_obj["spec"]["template"]["spec"])
    green = Side(
        green_obj,
        {"web-env": config_map("shop-fargate", green_mode)},
        {"web-secrets": secret("shop-fargate", green_secret)},
        {"web": service("shop-fargate")},
    )
    return blue, green


def app(pod: dict) -> dict:
    return next(c for c in pod["containers"] if c["name"] == "app")


# --- pure comparison ------------------------------------------------------------------------------


def test_a_normal_copy_shows_no_drift_although_the_transforms_changed_it() -> None:
    blue, green = sides()
    pod = green.workload["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and app(pod)["resources"]["requests"]["cpu"] == "500m"  # transformed
    assert compare(blue, green, TRANSFORMS) == []


def test_the_fingerprint_covers_images_env_resources_probes_data_and_ports() -> None:
    blue, _ = sides()
    paths = fingerprint(blue)
    assert paths["containers[app].image"] == "registry.example/web:1.4.2"
    assert paths["initContainers[migrate].image"] == "registry.example/web-migrate:1.4.2"
    assert paths["containers[app].env.LOG_LEVEL"] == "info"
    assert paths["containers[app].env.DB_PASSWORD"] == "secretKeyRef web-secrets/password"
    assert paths["containers[app].envFrom"] == "configMapRef web-env"
    assert paths["containers[app].resources.limits.memory"] == "512Mi"
    assert paths["containers[app].readinessProbe.httpGet.path"] == "/ready"
    assert paths["configMaps[web-env].mode"] == "fast"
    assert paths["secrets[web-secrets].password"] == "sha256:" + hashlib.sha256(BLUE_SECRET.encode()).hexdigest()
    assert paths["services[web].ports[http].targetPort"] == 8080
    assert BLUE_SECRET not in json.dumps(paths) and b64(BLUE_SECRET) not in json.dumps(paths)


def test_an_image_tag_that_differs_is_named_with_both_values() -> None:
    blue, green = sides(lambda pod: app(pod).update(image="registry.example/web:1.4.3"))
    found = compare(blue, green, TRANSFORMS)
    assert [(d.path, d.blue, d.green) for d in found] == [
        ("containers[app].image", "registry.example/web:1.4.2", "registry.example/web:1.4.3")
    ]
    assert str(found[0]) == ("containers[app].image: blue registry.example/web:1.4.2, green registry.example/web:1.4.3")


def test_init_containers_probes_resources_and_env_sources_are_compared_by_container_name() -> None:
    def edit(pod: dict) -> None:
        pod["initContainers"][0]["image"] = "registry.example/web-migrate:2"
        app(pod)["readinessProbe"]["httpGet"]["path"] = "/healthz"
        app(pod)["resources"]["limits"]["memory"] = "1Gi"
        app(pod)["env"][1]["valueFrom"]["secretKeyRef"]["name"] = "other-secrets"
        pod["containers"].append({"name": "sidecar", "image": "envoy:1"})

    blue, green = sides(edit)
    found = {d.path: (d.blue, d.green) for d in compare(blue, green, TRANSFORMS)}
    assert found == {
        "initContainers[migrate].image": ("registry.example/web-migrate:1.4.2", "registry.example/web-migrate:2"),
        "containers[app].readinessProbe.httpGet.path": ("/ready", "/healthz"),
        "containers[app].resources.limits.memory": ("512Mi", "1Gi"),
        "containers[app].env.DB_PASSWORD": ("secretKeyRef web-secrets/password", "secretKeyRef other-secrets/password"),
        "containers[sidecar].image": (None, "envoy:1"),
    }
    assert "containers[sidecar].image: blue absent, green envoy:1" in [str(d) for d in compare(blue, green, TRANSFORMS)]


def test_env_that_differs_only_as_declared_is_no_drift() -> None:
    blue, green = sides(lambda pod: app(pod)["env"][0].update(value="debug"))
    assert [d.path for d in compare(blue, green, TRANSFORMS)] == ["containers[app].env.LOG_LEVEL"]
    assert compare(blue, green, TRANSFORMS, Declared(ignore=("containers[app].env.LOG_LEVEL",))) == []
    assert compare(blue, green, TRANSFORMS, Declared(ignore=("containers[app].env",))) == []  # and all under it
    assert compare(blue, green, TRANSFORMS, Declared(expect={"containers[app].env.LOG_LEVEL": "debug"})) == []


def test_an_ignored_path_does_not_hide_its_siblings_or_a_similar_name() -> None:
    def edit(pod: dict) -> None:
        app(pod)["env"][0]["value"] = "debug"
        app(pod)["env"].append({"name": "LOG_LEVEL_X", "value": "1"})

    blue, green = sides(edit)
    found = compare(blue, green, TRANSFORMS, Declared(ignore=("containers[app].env.LOG_LEVEL",)))
    assert [d.path for d in found] == ["containers[app].env.LOG_LEVEL_X"]


def test_an_expected_value_green_does_not_have_is_drift_even_when_blue_and_green_agree() -> None:
    blue, green = sides()
    found = compare(blue, green, TRANSFORMS, Declared(expect={"containers[app].image": "registry.example/web:2.0"}))
    assert [str(d) for d in found] == [
        "containers[app].image: blue registry.example/web:1.4.2, "
        "green registry.example/web:1.4.2 (expected registry.example/web:2.0)"
    ]


def test_secret_content_that_differs_is_shown_by_hash_and_never_by_value() -> None:
    blue, green = sides(green_secret=GREEN_SECRET)
    found = compare(blue, green, TRANSFORMS)
    assert [(d.path, d.blue, d.green) for d in found] == [
        ("secrets[web-secrets].password", short_hash(BLUE_SECRET), short_hash(GREEN_SECRET))
    ]
    shown = " ".join([str(found[0]), repr(found[0]), json.dumps(found[0].to_dict())])
    for value in (BLUE_SECRET, GREEN_SECRET, b64(BLUE_SECRET), b64(GREEN_SECRET)):
        assert value not in shown
    assert short_hash(GREEN_SECRET) in str(found[0])


def test_a_secret_change_can_be_declared_by_its_hash_only() -> None:
    blue, green = sides(green_secret=GREEN_SECRET)
    wanted = Declared(expect={"secrets[web-secrets].password": short_hash(GREEN_SECRET)})
    assert compare(blue, green, TRANSFORMS, wanted) == []
    wrong = Declared(expect={"secrets[web-secrets].password": short_hash("something else")})
    assert [d.path for d in compare(blue, green, TRANSFORMS, wrong)] == ["secrets[web-secrets].password"]


def test_config_map_data_and_a_missing_referenced_object_are_drift() -> None:
    blue, green = sides(green_mode="slow")
    assert [str(d) for d in compare(blue, green, TRANSFORMS)] == ["configMaps[web-env].mode: blue fast, green slow"]
    green.secrets["web-secrets"] = None
    found = [str(d) for d in compare(blue, green, TRANSFORMS)]
    assert "secrets[web-secrets]: blue present, green missing" in found
    assert not any(f.startswith("secrets[web-secrets].") for f in found)  # one line for the missing Secret


def test_service_ports_are_compared_by_port_name() -> None:
    blue, green = sides()
    green.services["web"] = service("shop-fargate", target_port=9090)
    assert [str(d) for d in compare(blue, green, TRANSFORMS)] == [
        "services[web].ports[http].targetPort: blue 8080, green 9090"
    ]


def test_a_request_green_lacks_is_drift_but_the_copy_s_requests_equal_limits_is_not() -> None:
    blue, green = sides(lambda pod: app(pod)["resources"]["requests"].update(cpu="250m"))
    assert [str(d) for d in compare(blue, green, TRANSFORMS)] == [
        "containers[app].resources.requests.cpu: blue 500m, green 250m"
    ]
    no_transform = Transforms("shop-fargate", {"compute": "fargate"}, requests_equal_limits=False)
    assert [str(d) for d in compare(blue, green, no_transform)] == [  # blue's own requests are wanted then
        "containers[app].resources.requests.memory: blue 256Mi, green 512Mi"
    ]


def test_references_and_selecting_services() -> None:
    assert references(blue_web()) == (["web-env"], ["web-secrets"])
    assert selects(service("shop"), blue_web())
    assert not selects({"spec": {"selector": {"app": "api"}}}, blue_web())
    assert not selects({"spec": {}}, blue_web())  # no selector selects nothing


def test_differences_of_fingerprints_apply_ignore_and_expect() -> None:
    blue = {"containers[app].image": "a:1", "containers[app].env.X": "1"}
    green = {"containers[app].image": "a:2", "containers[app].env.X": "2"}
    assert [d.path for d in differences(blue, green)] == ["containers[app].env.X", "containers[app].image"]
    assert differences(blue, green, Declared(ignore=("containers[app]",))) == []


# --- spec rules -----------------------------------------------------------------------------------


def test_drift_rules_are_validated_with_the_field_named() -> None:
    from pydantic import ValidationError

    from include.slow_injection.spec.models import DriftRules, Workload

    ok = Workload.model_validate(
        {
            "kind": "Deployment",
            "namespace": "shop",
            "name": "web",
            "drift": {
                "ignore": ["containers[app].env.LOG_LEVEL", "configMaps[app.config].x"],
                "expect": {"services[web].ports[http].targetPort": 9090},
            },
        }
    )
    assert ok.drift is not None and ok.drift.ignore[0] == "containers[app].env.LOG_LEVEL"
    with pytest.raises(ValidationError) as bad_path:
        DriftRules.model_validate({"ignore": ["container[app].image"]})
    assert "ignore" in str(bad_path.value) and "drift path" in str(bad_path.value)
    with pytest.raises(ValidationError, match="expect: secrets\\[s\\].k: a Secret value is compared by hash"):
        DriftRules.model_validate({"expect": {"secrets[s].k": "plain-value"}})
    with pytest.raises(ValidationError, match="ignore: containers\\[app\\].image is also in expect"):
        DriftRules.model_validate({"ignore": ["containers[app].image"], "expect": {"containers[app].image": "a:2"}})


def test_a_spec_file_with_a_bad_drift_path_names_file_and_field(tmp_path: Path) -> None:
    from include.slow_injection.spec import load_wave
    from tests.support.waves import small_wave, write

    data = small_wave("w")
    data["services"][1]["workload"]["drift"] = {"ignore": ["containers.app.image"]}
    with pytest.raises(Exception) as err:
        load_wave(write(tmp_path, data))
    text = str(err.value)
    assert "small.yaml" in text and "workload.drift.ignore" in text and "containers.app.image" in text


# --- the Kubernetes driver on a real control plane -------------------------------------------------------


@pytest.fixture
def cluster(kube):
    """Blue's web with its ConfigMap, Secret and Service in one namespace; green's own copy of the Secret
    in a namespace the Fargate profile selects."""
    blue_ns, green_ns = kube.namespace("shop"), kube.namespace("green")
    api = KubeAccess(kube.api_client)
    core = client.CoreV1Api(api.api_client)
    api.create("Deployment", blue_ns, blue_web(blue_ns))
    core.create_namespaced_config_map(blue_ns, config_map(blue_ns))
    core.create_namespaced_service(blue_ns, service(blue_ns))
    core.create_namespaced_secret(blue_ns, secret(blue_ns, BLUE_SECRET))
    core.create_namespaced_secret(green_ns, secret(green_ns, BLUE_SECRET))  # green's own copy
    driver = KubernetesPlatform(api, api, KubernetesPlatform.Settings(add_labels={"compute": "fargate"}))
    web = {
        "kind": "Deployment",
        "namespace": blue_ns,
        "name": "web",
        "green_namespace": green_ns,
        "copy_config_maps": True,
        "copy_services": ["web"],
    }
    yield driver, api, core, web


def edit(api: KubeAccess, kind: str, namespace: str, name: str, change: Any) -> dict:
    """Read, change (`change(obj)`), write back whole; again on a 409 (a controller wrote it meanwhile)."""
    for _ in range(10):
        obj = api.get(kind, namespace, name)
        change(obj)
        try:
            return api.replace(kind, namespace, name, obj)
        except client.ApiException as err:
            if err.status != 409:
                raise
    raise AssertionError(f"{kind} {namespace}/{name} kept changing under the test")


def test_driver_waits_for_green_then_finds_no_drift_in_a_normal_copy(cluster) -> None:
    driver, _, _, web = cluster
    assert driver.config_drift(web).state == "waiting"
    driver.deploy_green(web, apply=True)
    reading = driver.config_drift(web)
    assert reading.state == "ready", reading.detail
    assert "1 ConfigMap(s), 1 Secret(s), 1 Service(s)" in reading.detail


def test_driver_names_an_image_tag_green_drifted_to(cluster) -> None:
    driver, api, _, web = cluster
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)
    edit(
        api,
        "Deployment",
        green_ns,
        "web",
        lambda green: app(green["spec"]["template"]["spec"]).update(image="registry.example/web:1.4.3"),
    )
    reading = driver.config_drift(web)
    assert reading.state == "failed"
    assert "containers[app].image: blue registry.example/web:1.4.2, green registry.example/web:1.4.3" in reading.detail


def test_driver_passes_env_that_differs_only_as_declared(cluster) -> None:
    driver, api, _, web = cluster
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)
    edit(
        api,
        "Deployment",
        green_ns,
        "web",
        lambda green: app(green["spec"]["template"]["spec"])["env"][0].update(value="debug"),
    )
    assert driver.config_drift(web).state == "failed"
    declared = {**web, "drift": {"ignore": ["containers[app].env.LOG_LEVEL"], "expect": {}}}
    reading = driver.config_drift(declared)
    assert reading.state == "ready", reading.detail


def test_driver_shows_a_secret_that_differs_by_hash_only(cluster) -> None:
    driver, _, core, web = cluster
    driver.deploy_green(web, apply=True)
    core.patch_namespaced_secret("web-secrets", web["green_namespace"], {"data": {"password": b64(GREEN_SECRET)}})
    reading = driver.config_drift(web)
    assert reading.state == "failed"
    assert (
        f"secrets[web-secrets].password: blue {short_hash(BLUE_SECRET)}, green {short_hash(GREEN_SECRET)}"
        in reading.detail
    )
    for value in (BLUE_SECRET, GREEN_SECRET, b64(BLUE_SECRET), b64(GREEN_SECRET)):
        assert value not in reading.detail


def test_driver_compares_selecting_services_and_a_missing_green_secret(cluster) -> None:
    driver, _, core, web = cluster
    green_ns = web["green_namespace"]
    workload = {**web, "copy_services": []}
    driver.deploy_green(workload, apply=True)
    reading = driver.config_drift(workload)  # blue's Service `web` selects the workload; green has none
    assert reading.state == "failed" and "services[web]: blue present, green missing" in reading.detail
    core.create_namespaced_service(green_ns, service(green_ns))
    core.delete_namespaced_secret("web-secrets", green_ns)
    reading = driver.config_drift(workload)
    assert reading.state == "failed", reading.detail
    assert "secrets[web-secrets]: blue present, green missing" in reading.detail
    assert "services[" not in reading.detail


def test_server_side_defaults_are_no_drift_but_a_defaulted_field_that_differs_is(cluster) -> None:
    """The API server fills in what neither side wrote (imagePullPolicy, terminationMessagePath, probe
    timings, a Service port's protocol and targetPort). Green's Service here is written by hand with none
    of them while blue's spells them out: the same after defaulting, so no drift; a defaulted value
    changed on one side only is."""
    driver, api, core, web = cluster
    blue_ns, green_ns = web["namespace"], web["green_namespace"]
    workload = {**web, "copy_services": []}
    driver.deploy_green(workload, apply=True)
    core.create_namespaced_service(
        green_ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
    )
    container = app(api.get("Deployment", green_ns, "web")["spec"]["template"]["spec"])
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    probe = container["readinessProbe"]
    assert probe["timeoutSeconds"] == 1 and probe["httpGet"]["scheme"] == "HTTP"
    assert api.get("Service", green_ns, "web")["spec"]["ports"][0]["protocol"] == "TCP"
    reading = driver.config_drift(workload)
    assert reading.state == "ready", reading.detail
    assert "1 Service(s)" in reading.detail

    edit(
        api,
        "Deployment",
        green_ns,
        "web",
        lambda green: app(green["spec"]["template"]["spec"])["readinessProbe"].update(timeoutSeconds=5),
    )
    edit(api, "Service", blue_ns, "web", lambda svc: svc["spec"]["ports"][0].update(protocol="UDP"))
    reading = driver.config_drift(workload)
    assert reading.state == "failed"
    assert "containers[app].readinessProbe.timeoutSeconds: blue 1, green 5" in reading.detail
    assert "services[web].ports[http].protocol: blue UDP, green TCP" in reading.detail
    assert "2 difference(s)" in reading.detail


def test_a_green_secret_written_as_string_data_compares_by_content(cluster) -> None:
    """Green's Secret made the way people (and secret operators) write them, `stringData`: the API server
    stores it base64 in `data`, and equal content hashes equal."""
    driver, _, core, web = cluster
    green_ns = web["green_namespace"]
    driver.deploy_green(web, apply=True)
    core.delete_namespaced_secret("web-secrets", green_ns)
    core.create_namespaced_secret(
        green_ns, {"metadata": {"name": "web-secrets"}, "stringData": {"password": BLUE_SECRET}}
    )
    assert driver.config_drift(web).state == "ready"
    core.replace_namespaced_secret(
        "web-secrets", green_ns, {"metadata": {"name": "web-secrets"}, "stringData": {"password": GREEN_SECRET}}
    )
    reading = driver.config_drift(web)
    assert reading.state == "failed"
    assert f"green {short_hash(GREEN_SECRET)}" in reading.detail and GREEN_SECRET not in reading.detail


def test_a_container_s_resource_claims_are_compared_not_a_crash(cluster) -> None:
    """The API's `resources` holds a list too (`claims`, dynamic resource allocation), beside the
    requests and limits maps."""
    driver, api, _, web = cluster
    blue_ns, green_ns = web["namespace"], web["green_namespace"]

    def claim(obj: dict, name: str = "scratch") -> None:
        pod = obj["spec"]["template"]["spec"]
        pod["resourceClaims"] = [{"name": name, "resourceClaimTemplateName": "scratch-template"}]
        app(pod)["resources"]["claims"] = [{"name": name}]

    edit(api, "Deployment", blue_ns, "web", claim)
    driver.deploy_green(web, apply=True)
    reading = driver.config_drift(web)
    assert reading.state == "ready", reading.detail
    edit(api, "Deployment", green_ns, "web", lambda green: claim(green, "other"))
    reading = driver.config_drift(web)
    assert reading.state == "failed"
    assert "containers[app].resources.claims: blue scratch, green other" in reading.detail


def test_the_gate_needs_no_more_than_the_driver_s_own_role(cluster, kube) -> None:
    """The RBAC the driver documents (kubernetes/rbac.py), bound to a ServiceAccount: the gate reads both
    sides with it, Secrets by name only (it may not list them)."""
    from include.slow_injection.kubernetes.rbac import ROLE_NAME, manifests

    driver, api, core, web = cluster
    blue_ns, green_ns = web["namespace"], web["green_namespace"]
    driver.deploy_green(web, apply=True)
    rbac = client.RbacAuthorizationV1Api(api.api_client)
    core.create_namespaced_service_account(green_ns, {"metadata": {"name": "airflow"}})
    subject = [{"kind": "ServiceAccount", "name": "airflow", "namespace": green_ns}]
    for doc in manifests([blue_ns, green_ns]):
        if doc["kind"] == "Role":
            rbac.create_namespaced_role(doc["metadata"]["namespace"], doc)
            rbac.create_namespaced_role_binding(
                doc["metadata"]["namespace"],
                {
                    "metadata": {"name": ROLE_NAME},
                    "subjects": subject,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
                },
            )
    token = core.create_namespaced_service_account_token("airflow", green_ns, {"spec": {"expirationSeconds": 600}})
    limited = KubeAccess(kube.plane.api_client("airflow", token.status.token))
    with pytest.raises(client.ApiException) as refused:
        limited.list("CoreV1Api", "list_namespaced_secret", green_ns)
    assert refused.value.status == 403
    gate = KubernetesPlatform(limited, limited, KubernetesPlatform.Settings(add_labels={"compute": "fargate"}))
    reading = gate.config_drift(web)
    assert reading.state == "ready", reading.detail
    core.patch_namespaced_secret("web-secrets", green_ns, {"data": {"password": b64(GREEN_SECRET)}})
    assert "secrets[web-secrets].password" in gate.config_drift(web).detail


# --- the simulated driver ---------------------------------------------------------------------------


def test_simulated_platform_has_no_drift_unless_the_world_injects_some(world) -> None:
    from include.slow_injection.drivers.simulated import SimulatedPlatform

    web = {"kind": "Deployment", "namespace": "shop", "name": "web"}
    world.reset({"workloads": {"blue": {"Deployment/shop/web": {"replicas": 2}}}})
    platform = SimulatedPlatform(world)
    assert platform.config_drift(web).state == "waiting"  # no green copy yet
    platform.deploy_green(web, apply=True)
    assert platform.config_drift(web).state == "ready"
    world.update(
        lambda s: s.update(
            config={
                "Deployment/shop/web": {
                    "blue": {"containers[web].image": "web:1"},
                    "green": {"containers[web].image": "web:2"},
                }
            }
        )
    )
    reading = platform.config_drift(web)
    assert reading.state == "failed" and "containers[web].image: blue web:1, green web:2" in reading.detail
    assert platform.config_drift({**web, "drift": {"ignore": ["containers[web].image"]}}).state == "ready"


# --- a whole wave on the Kubernetes driver ------------------------------------------------------------


class ImagePinner:
    """A mutating admission webhook (as an admission policy on green might be) pinning another tag on every
    Deployment written to one namespace: the copy the driver made is not what runs."""

    def mutate(self, review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        pod = (((request.get("object") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        patch = []
        for i, c in enumerate(pod.get("containers") or []):
            pinned = c["image"].rsplit(":", 1)[0] + ":1-patched"
            if c["image"] != pinned:
                patch.append({"op": "replace", "path": f"/spec/template/spec/containers/{i}/image", "value": pinned})
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        if patch:
            response.update(patchType="JSONPatch", patch=b64(json.dumps(patch)))
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


@contextmanager
def images_pinned_in(plane, namespace: str) -> Iterator[None]:
    """The webhook served on loopback and registered for `namespace` only, for the `with` block."""
    from include.slow_injection.lab.kube.control_plane import free_ports
    from include.slow_injection.lab.kube.fargate import serve

    [port] = free_ports(1)
    cert, key = plane.pki.serving("image-pinning-webhook", ["127.0.0.1"])
    server = serve(ImagePinner(), port, cert, key)
    api_client = plane.api_client()
    admission = client.AdmissionregistrationV1Api(api_client)
    name = f"pin-images-{namespace}"
    admission.create_mutating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "pin-images.slow-injection.io",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/mutate",
                        "caBundle": base64.b64encode(plane.pki.ca_cert_path.read_bytes()).decode(),
                    },
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "rules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"],
                            "scope": "Namespaced",
                        }
                    ],
                }
            ],
        }
    )
    try:
        probe = blue_web(namespace)
        probe["metadata"]["name"] = "webhook-probe"

        def pinned() -> bool:
            made = client.AppsV1Api(api_client).create_namespaced_deployment(namespace, probe, dry_run="All")
            return made.spec.template.spec.containers[0].image.endswith(":1-patched")

        wait_for(pinned, "the API server to call the image-pinning webhook", timeout=15)
        yield
    finally:
        admission.delete_mutating_webhook_configuration(name)
        server.shutdown()
        server.server_close()


def drift_wave(world: str, blue_ns: str, green_ns: str) -> dict[str, Any]:
    """The exposed web service alone, moved between two namespaces of the control plane."""
    return {
        **kubernetes_wave_frame("k8s", "kube_drift"),
        "services": [
            {
                "name": "web",
                "exposure": "exposed",
                "workload": {"kind": "Deployment", "namespace": blue_ns, "name": "web", "green_namespace": green_ns},
                "router": sim(world),
                "rollout_timeout": 60,
                "traffic_steps": [{"weight": 50, "bake": 0.4}, {"weight": 100, "bake": 0.4}],
                "gates": [metric_gate(world, "error-rate", 'error_ratio{service="${service}",env="${env}"}')],
            },
        ],
    }


def seed_web(api: KubeAccess, blue_ns: str, green_ns: str) -> None:
    """Blue's web reading its password from a Secret each side holds (with different values), and the
    PodDisruptionBudget the Fargate preflight asks green for."""
    core = client.CoreV1Api(api.api_client)
    container = {
        "name": "web",
        "image": "registry.example/web:1",
        "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "password"}}}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }
    api.create(
        "Deployment",
        blue_ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"nodeSelector": {"eks.amazonaws.com/nodegroup": "ec2-general"}, "containers": [container]},
                },
            },
        },
    )
    for ns, value in ((blue_ns, BLUE_SECRET), (green_ns, GREEN_SECRET)):
        core.create_namespaced_secret(ns, secret(ns, value))
    client.PolicyV1Api(api.api_client).create_namespaced_pod_disruption_budget(
        green_ns,
        {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
    )


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_wave_whose_green_image_drifted_fails_the_gate_and_never_moves_traffic(
    tmp_path: Path, world, capfd, reports_dir: Path, kube, monkeypatch
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.support.waves import run_wave, weights_history

    blue_ns, green_ns = kube.namespace("shop"), kube.namespace("green")
    api = KubeAccess(kube.api_client)
    seed_web(api, blue_ns, green_ns)
    kube.connection(monkeypatch, "kube_drift")
    world.reset(
        {"routers": {"web": {"blue": 100, "green": 0}}, "metrics": {'error_ratio{service="web",env="green"}': 0.001}}
    )
    with images_pinned_in(kube.plane, green_ns):
        state, tis = run_wave(tmp_path, world, drift_wave(world.path.stem, blue_ns, green_ns))
    run_id = run_wave.last_run_id

    assert state == "failed"
    assert tis["validation.web.config_drift"] == "failed"
    assert tis["validation.web.deploy_green"] == "success"
    assert tis["gradual_transition.web.step1_50pct.set_traffic"] in ("skipped", "upstream_failed", None)
    assert weights_history(world) == []  # users never moved
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
    assert tis["rollback.restore_blue_workloads"] == "success" and tis["rollback.traffic_to_blue"] == "success"
    assert api.get("Deployment", blue_ns, "web")["spec"]["replicas"] == 2  # blue serves on
    green_image = api.get("Deployment", green_ns, "web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert green_image == "registry.example/web:1-patched"  # what the webhook made of the copy
    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == "wave_k8s", XComModel.run_id == run_id).all()
        stored = {f"{x.task_id}/{x.key}": [x.value, XComModel.deserialize_value(x)] for x in rows}
    verdict = json.dumps(stored["validation.web.config_drift/verdict"][1])
    assert "containers[web].image: blue registry.example/web:1, green registry.example/web:1-patched" in verdict
    assert f"secrets[web-secrets].password: blue {short_hash(BLUE_SECRET)}, green {short_hash(GREEN_SECRET)}" in verdict
    out = capfd.readouterr()
    logs = out.out + out.err
    assert "containers[web].image" in logs  # the gate's failure (the exception text) went to the task log
    everything = [logs, json.dumps(stored, default=str), world.path.read_text()]
    everything += [p.read_text(errors="replace") for p in reports_dir.rglob("*") if p.is_file()]
    for value in (BLUE_SECRET, GREEN_SECRET, b64(BLUE_SECRET), b64(GREEN_SECRET)):
        assert not any(value in text for text in everything), "a Secret value leaked"


# --- where the gate sits in a wave's DAG --------------------------------------------------------------


def test_the_drift_gate_follows_each_copy_and_precedes_the_first_traffic_step_and_the_handover(tmp_path: Path) -> None:
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_wave
    from tests.support.waves import small_wave, write

    dag = build_dag(load_wave(write(tmp_path, small_wave("w"))))

    def upstream(task_id: str) -> set[str]:
        return {t.task_id for t in dag.get_task(task_id).get_flat_relatives(upstream=True)}

    web, job = "validation.web.config_drift", "migrate_scheduled_jobs.report-job.copy.config_drift"
    assert {"validation.web.deploy_green"} <= upstream(web)
    assert web in upstream("gradual_transition.web.step1_25pct.set_traffic")
    assert "migrate_scheduled_jobs.report-job.copy.deploy_green" in upstream(job)
    assert job in upstream("migrate_scheduled_jobs.report-job.handover.hand_over")
    assert web in {t.task_id for t in dag.get_task("validation.web.gate_failed").upstream_list}  # fast rollback
    gate = dag.get_task(web)
    assert gate.kind == "platform" and gate.gate["check"] == "config_drift" and gate.gate["workload"]["name"] == "web"


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_scheduled_job_whose_copy_drifted_is_never_handed_over(tmp_path: Path, world) -> None:
    from tests.support.waves import healthy_world, run_wave, small_wave, weights_history

    state = healthy_world()
    state["config"] = {
        "CronJob/shop/report-job": {
            "blue": {"containers[report].env.BATCH_SIZE": "500"},
            "green": {"containers[report].env.BATCH_SIZE": "50"},
        }
    }
    world.reset(state)
    outcome, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert outcome == "failed"
    assert tis["migrate_scheduled_jobs.report-job.copy.config_drift"] == "failed"
    assert tis["migrate_scheduled_jobs.report-job.handover.hand_over"] in ("skipped", "upstream_failed", None)
    jobs = world.read()["workloads"]
    assert jobs["blue"]["CronJob/shop/report-job"]["suspended"] is False  # still runs on blue only
    assert jobs["green"]["CronJob/shop/report-job"]["suspended"] is True
    assert weights_history(world) == []
    assert tis["rollback.restore_blue_workloads"] == "success"
