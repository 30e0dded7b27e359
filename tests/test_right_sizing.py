"""Right-sizing on Fargate: the sizing rules (sum vs init, 256 MB, rounding up the table), the
CapacityProvisioned annotation, advice with figures, green's pods read by the Kubernetes driver from a
real control plane (the Fargate emulation sizes and annotates green's pods as EKS does; no annotation is
made by hand), and the report's Right-sizing section (collection that never fails, HTML and markdown).

Moved from the old stand-in API server: its own "annotates only the Fargate namespace" test became the
same check against the Fargate emulation; Jobs and pods are made by the real Job controller, so their
names and creation times are the server's (the test no longer sets creationTimestamp)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes import client
from pydantic import ValidationError

from include.slow_injection.drivers.kubernetes import CAPACITY_JOBS, KubeAccess, KubernetesPlatform
from include.slow_injection.drivers.simulated import SimulatedPlatform, SimulatedWorld
from include.slow_injection.kubernetes.right_sizing import (
    FARGATE_SIZES,
    GIB,
    MIB,
    PRICE_PER_GB_HOUR,
    PRICE_PER_VCPU_HOUR,
    FargateSize,
    Resources,
    Usage,
    advise,
    assess,
    fargate_size,
    p95,
    parse_capacity,
    parse_quantity,
    pod_request,
)
from include.slow_injection.reporting.html import render_html
from include.slow_injection.reporting.right_sizing_section import collect_right_sizing, right_sizing_config
from include.slow_injection.spec import parse_wave
from include.slow_injection.spec.models import Report
from include.slow_injection.tasks.report import render_markdown
from tests.support.kube import wait_for
from tests.support.reports import T0, report_data
from tests.support.waves import sim, small_wave

CPU_Q = 'max(rate(cpu_seconds{service="${service}"}[1m]))'
MEM_Q = 'max(working_set_bytes{service="${service}"})'


def container(
    name: str, cpu: str | None = None, memory: str | None = None, limits: dict | None = None, **extra: Any
) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "requests": requests, "limits": limits or {}, **extra}


def facts(
    name: str, containers: list[dict], init: list[dict] | None = None, provisioned: str | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "phase": "Running",
        "containers": containers,
        "init_containers": init or [],
        "capacity_provisioned": provisioned,
    }


def cost(vcpu: float, gb: float) -> float:
    return vcpu * PRICE_PER_VCPU_HOUR + gb * PRICE_PER_GB_HOUR


# --- the rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", 0.25),
        ("1", 1.0),
        ("1.5", 1.5),
        ("2k", 2000.0),
        ("512Mi", 512 * MIB),
        ("2Gi", 2 * GIB),
        ("1G", 1e9),
        ("2.5G", 2.5e9),
        ("100M", 1e8),
        ("1e3", 1000.0),
        ("1.5Ki", 1536.0),
        ("500u", 5e-4),
        (2, 2.0),
    ],
)
def test_kubernetes_quantities_are_read_with_decimal_and_binary_suffixes(text: Any, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "1.2.3", "12mb", "Gi", "1 Gi", None, True])
def test_a_bad_quantity_is_an_error_that_shows_it(text: Any) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("cpu", "memory", "size"),
    [
        (1, 8 * GIB, "2vCPU 9GB"),  # AWS's own example: no 1-vCPU size holds 8 GB + 256 MB
        (0.01, 16 * MIB, "0.25vCPU 0.5GB"),  # a tiny pod gets the smallest size
        (0, 0, "0.25vCPU 0.5GB"),  # no request at all: the smallest
        (0, 3 * GIB, "0.5vCPU 4GB"),  # memory only: 3 GiB + 256 MiB is past 0.25 vCPU's 2 GB
        (0.25, 1792 * MIB, "0.25vCPU 2GB"),  # exactly 2 GB with the 256 MB
        (0.25, 1793 * MIB, "0.5vCPU 3GB"),  # one MiB more
        (1.5, 2 * GIB, "2vCPU 4GB"),  # CPU rounds up to the next vCPU with its smallest memory
        (4, 30 * GIB, "8vCPU 32GB"),  # 4 vCPU tops out at 30 GB; 8 vCPU goes in 4 GB steps
        (8, 61 * GIB, "16vCPU 64GB"),  # 16 vCPU in 8 GB steps
    ],
)
def test_fargate_rounds_requests_plus_256_mb_up_to_its_table(cpu: float, memory: float, size: str) -> None:
    assert str(fargate_size(cpu, memory)) == size


def test_a_request_that_exactly_fills_a_size_gets_that_size_and_too_big_gets_none() -> None:
    for size in FARGATE_SIZES:
        previous_cpu = max((s.vcpu for s in FARGATE_SIZES if s.vcpu < size.vcpu), default=0.0)
        # the most memory a size holds, with a CPU only that size's tier gives
        assert fargate_size(previous_cpu + 0.001, size.memory_bytes - 256 * MIB) == size
    assert fargate_size(16, 120 * GIB) is None  # 120 GB + 256 MB
    assert fargate_size(17, 1 * GIB) is None


def test_the_pod_request_is_the_sum_of_containers_or_the_largest_init_container() -> None:
    pod = facts(
        "p",
        [container("app", "500m", "1Gi"), container("proxy", "250m", "256Mi")],
        init=[container("migrate", "2", "512Mi"), container("warm", "100m", "3Gi")],
    )
    assert pod_request(pod) == Resources(2.0, 3 * GIB)  # per resource: init CPU 2 > 0.75, init memory 3 Gi > 1.25
    assert str(fargate_size(2.0, 3 * GIB)) == "2vCPU 4GB"
    summed = facts("p", [container("app", "1", "1Gi"), container("b", "1", "1Gi")], init=[container("i", "1", "1Gi")])
    assert pod_request(summed) == Resources(2.0, 2 * GIB)


def test_a_limit_stands_in_for_a_missing_request_and_memory_only_requests_count() -> None:
    only_limits = facts("p", [container("app", limits={"cpu": "1", "memory": "2Gi"})])
    assert pod_request(only_limits) == Resources(1.0, 2 * GIB)
    memory_only = facts("p", [container("app", memory="3Gi")])
    assert pod_request(memory_only) == Resources(0.0, 3 * GIB)
    sidecar = facts(
        "p", [container("app", "1", "1Gi")], init=[container("log", "250m", "256Mi", restart_policy="Always")]
    )
    assert pod_request(sidecar) == Resources(1.25, 1280 * MIB)  # a sidecar runs beside the app


def test_the_capacity_provisioned_annotation_is_read_and_a_bad_one_is_an_error() -> None:
    assert parse_capacity("0.25vCPU 0.5GB") == FargateSize(0.25, 0.5)
    assert parse_capacity("2vCPU 9GB") == FargateSize(2, 9)
    assert parse_capacity(None) is None
    assert str(FargateSize(0.25, 0.5)) == "0.25vCPU 0.5GB"
    with pytest.raises(ValueError, match="CapacityProvisioned annotation '2 cores'"):
        parse_capacity("2 cores")


# --- advice --------------------------------------------------------------------------------------------


def test_the_256_mb_pushing_a_pod_into_a_dearer_size_is_advised_with_the_figures() -> None:
    [advice] = advise(Resources(1, 8 * GIB), parse_capacity("2vCPU 9GB"))
    change = cost(1, 8) / cost(2, 9) - 1
    assert advice.kind == "cheaper"
    assert "requests 1 vCPU / 8 GiB → Fargate bills 2vCPU 9GB because of the 256 MB" in advice.text
    assert "requesting 7.75 GiB (7936Mi) memory would fit 1vCPU 8GB" in advice.text
    assert f"${cost(1, 8):.4f}/h per pod instead of ${cost(2, 9):.4f}/h (−{abs(change):.0%})" in advice.text
    assert f"{abs(change):.0%}" == "37%"
    assert advise(Resources(1, 7936 * MIB), parse_capacity("1vCPU 8GB")) == []  # already fits: nothing to say


def test_usage_above_the_requests_is_safer_to_raise_with_the_new_size_and_cost() -> None:
    [advice] = advise(
        Resources(0.25, 512 * MIB), parse_capacity("0.25vCPU 1GB"), Usage(cpu_p95=0.4, memory_p95=600 * MIB)
    )
    assert advice.kind == "safer"
    assert "CPU p95 0.4 vCPU is above the request 0.25 vCPU" in advice.text
    assert "memory p95 600 MiB is 117% of the request 512 MiB" in advice.text
    # p95 × 1.2 = 0.48 vCPU / 720 MiB → 0.5 vCPU 1 GB; request all it holds
    assert "request 0.5 vCPU / 768 MiB (768Mi) memory, the most 0.5vCPU 1GB holds" in advice.text
    assert f"(+{cost(0.5, 1) / cost(0.25, 1) - 1:.0%})" in advice.text


def test_usage_far_below_the_requests_is_cheaper_with_the_size_that_still_covers_p95() -> None:
    [advice] = advise(Resources(1, 8 * GIB), parse_capacity("2vCPU 9GB"), Usage(cpu_p95=0.3, memory_p95=1.5 * GIB))
    assert advice.kind == "cheaper"
    assert "usage p95 CPU 0.3 vCPU, memory 1.5 GiB" in advice.text
    assert "fits 0.5vCPU 3GB: request 0.5 vCPU / 2.75 GiB (2816Mi) memory" in advice.text  # 0.36 / 1.8 GiB + 256 MiB
    assert f"(−{1 - cost(0.5, 3) / cost(2, 9):.0%})" in advice.text


def test_usage_that_fits_says_so_and_never_invents_a_saving() -> None:
    [advice] = advise(
        Resources(0.5, 768 * MIB), parse_capacity("0.5vCPU 1GB"), Usage(cpu_p95=0.35, memory_p95=500 * MIB)
    )
    assert advice.kind == "note" and "no cheaper Fargate size than 0.5vCPU 1GB" in advice.text
    [cpu_only] = advise(Resources(0.5, 768 * MIB), parse_capacity("0.5vCPU 1GB"), Usage(cpu_p95=0.6))
    assert cpu_only.kind == "safer" and "memory" not in cpu_only.text.split(";")[0]


def test_a_provisioned_size_other_than_the_rules_and_a_pod_too_big_for_fargate_are_said() -> None:
    mismatch, _ = advise(Resources(0.5, 1 * GIB), parse_capacity("1vCPU 2GB"), Usage(cpu_p95=0.3, memory_p95=400 * MIB))
    assert mismatch.kind == "note" and "Fargate provisioned 1vCPU 2GB where its rules give 0.5vCPU 2GB" in mismatch.text
    [huge] = advise(Resources(16, 120 * GIB), None)
    assert huge.kind == "safer" and "exceed Fargate's largest size 16vCPU 120GB" in huge.text


def test_a_service_s_pods_are_grouped_by_shape_and_an_unreadable_pod_is_its_own_error() -> None:
    web = [facts(f"web-{i}", [container("app", "1", "8Gi")], provisioned="2vCPU 9GB") for i in range(3)]
    odd = facts("web-x", [container("app", "1", "8Gi")])  # not annotated (yet)
    bad = facts("web-bad", [container("app", "lots")])
    groups = assess(web + [odd, bad])
    assert [g.get("pods") for g in groups] == [["web-0", "web-1", "web-2"], ["web-x"], ["web-bad"]]
    assert groups[0]["billed"] == "2vCPU 9GB" and groups[0]["hourly_cost"] == pytest.approx(cost(2, 9))
    assert groups[1]["provisioned"] is None and groups[1]["advice"][0]["text"].startswith("no CapacityProvisioned")
    assert "pod web-bad: not a Kubernetes quantity: 'lots'" in groups[2]["error"]
    assert p95([float(i) for i in range(1, 101)]) == pytest.approx(95.05) and p95([]) is None


# --- green's pods through the drivers ------------------------------------------------------------------

APP = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def blue_web(namespace: str, app: dict, init: dict | None = None) -> dict:
    """Blue's web on the EC2 node group; `init`: an init container's resources."""
    pod: dict[str, Any] = {
        "nodeSelector": {"eks.amazonaws.com/nodegroup": "ec2-general"},
        "containers": [{"name": "app", "image": "web:1", "resources": app}],
    }
    if init is not None:
        pod["initContainers"] = [{"name": "init", "image": "init:1", "resources": init}]
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


def blue_report(namespace: str) -> dict:
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
        "spec": {"schedule": "0 3 1 1 *", "suspend": False, "jobTemplate": {"spec": job}},
    }


@pytest.fixture
def cluster(kube):
    """Blue in one namespace, green in one the Fargate profile selects (the emulation sizes its pods)."""
    blue_ns, green_ns = kube.namespace("shop"), kube.namespace("green")
    api = KubeAccess(kube.api_client)
    driver = KubernetesPlatform(api, api, KubernetesPlatform.Settings(add_labels={"compute": "fargate"}))
    web = {"kind": "Deployment", "namespace": blue_ns, "name": "web", "green_namespace": green_ns}
    report = {"kind": "CronJob", "namespace": blue_ns, "name": "report", "green_namespace": green_ns}
    yield api, driver, web, report


def pods_of(api: KubeAccess, namespace: str, selector: str) -> list[dict]:
    return api.list("CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector)


def annotated(pods: list[dict]) -> list[dict]:
    return [p for p in pods if (p["metadata"].get("annotations") or {}).get("CapacityProvisioned")]


def test_the_kubernetes_driver_reads_green_s_pods_with_the_capacity_fargate_provisioned(cluster) -> None:
    api, driver, web, _ = cluster
    blue_ns, green_ns = web["namespace"], web["green_namespace"]
    api.create("Deployment", blue_ns, blue_web(blue_ns, APP, init={"requests": {"cpu": "2", "memory": "1Gi"}}))
    with pytest.raises(LookupError, match=f"green Deployment {green_ns}/web does not exist"):
        driver.capacity(web)
    driver.deploy_green(web, apply=True)
    client.CoreV1Api(api.api_client).create_namespaced_pod(
        green_ns,
        {  # another workload's pod on green
            "metadata": {"name": "other", "labels": {"app": "other", "compute": "fargate"}},
            "spec": {"containers": [{"name": "app", "image": "other:1", "resources": APP}]},
        },
    )
    green = wait_for(
        lambda: len(annotated(pods_of(api, green_ns, "app=web"))) == 2 and pods_of(api, green_ns, "app=web"),
        "the Fargate emulation to size green's two pods",
    )
    wait_for(lambda: annotated(pods_of(api, green_ns, "app=other")), "the other pod sized")
    blue = wait_for(
        lambda: len(pods_of(api, blue_ns, "app=web")) == 2 and pods_of(api, blue_ns, "app=web"), "blue's two pods"
    )
    assert not annotated(blue)  # on the EC2 node group: no Fargate annotation

    got = driver.capacity(web)
    assert sorted(p["name"] for p in got) == sorted(p["metadata"]["name"] for p in green)
    assert {p["capacity_provisioned"] for p in got} == {"2vCPU 4GB"}  # the init container's 2 vCPU + 1 GiB + 256 MB
    assert got[0]["containers"] == [
        {"name": "app", "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    ]
    [group] = assess(got)
    assert group["requests_text"] == "2 vCPU / 1 GiB"
    assert group["expected"] == group["billed"] == "2vCPU 4GB" and group["advice"] == []


def test_a_cronjob_s_capacity_comes_from_the_pods_of_its_last_jobs(cluster) -> None:
    api, driver, _, report = cluster
    green_ns = report["green_namespace"]
    api.create("CronJob", report["namespace"], blue_report(report["namespace"]))
    driver.deploy_green(report, apply=True)
    assert driver.capacity(report) == []  # no run yet
    owner = api.get("CronJob", green_ns, "report")
    batch = client.BatchV1Api(api.api_client)
    names = [f"report-{1000 + i}" for i in range(CAPACITY_JOBS + 2)]
    for name in names:  # as the CronJob controller makes them (owner reference), oldest first
        template = owner["spec"]["jobTemplate"]["spec"]["template"]
        batch.create_namespaced_job(
            green_ns,
            {
                "metadata": {
                    "name": name,
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "CronJob",
                            "name": "report",
                            "uid": owner["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {"backoffLimit": 0, "template": template},
            },
        )
    wait_for(
        lambda: len(annotated(pods_of(api, green_ns, "batch.kubernetes.io/job-name"))) == len(names),
        "a sized pod for every Job",
    )
    got = driver.capacity(report)
    assert sorted(p["name"].rsplit("-", 1)[0] for p in got) == names[2:]
    assert {p["capacity_provisioned"] for p in got} == {"1vCPU 2GB"}


def test_green_s_pods_are_sized_by_the_rules_right_sizing_uses_and_blue_s_are_not(cluster) -> None:
    """The copy requests its limits (0.5 vCPU, 512 MiB); + 256 MiB → Fargate's 0.5 vCPU / 1 GB size, which
    the driver reads back and the assessment expects."""
    api, driver, web, _ = cluster
    blue_ns, green_ns = web["namespace"], web["green_namespace"]
    api.create(
        "Deployment",
        blue_ns,
        blue_web(
            blue_ns, {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
        ),
    )
    driver.deploy_green(web, apply=True)
    wait_for(lambda: len(annotated(pods_of(api, green_ns, "app=web"))) == 2, "green's two pods sized")
    blue = wait_for(
        lambda: len(pods_of(api, blue_ns, "app=web")) == 2 and pods_of(api, blue_ns, "app=web"), "blue's two pods"
    )
    assert not annotated(blue)
    assert {p["capacity_provisioned"] for p in driver.capacity(web)} == {"0.5vCPU 1GB"}
    [group] = assess(driver.capacity(web))
    assert group["expected"] == group["provisioned"] == "0.5vCPU 1GB"


def test_a_green_pod_too_big_for_fargate_stays_pending_and_the_assessment_says_so(cluster) -> None:
    api, driver, web, _ = cluster
    blue_ns, green_ns = web["namespace"], web["green_namespace"]
    huge = {"limits": {"cpu": "16", "memory": "120Gi"}}  # + Fargate's 256 MB: past its largest size
    api.create("Deployment", blue_ns, blue_web(blue_ns, huge))
    driver.deploy_green(web, apply=True)
    events = client.CoreV1Api(api.api_client)
    wait_for(
        lambda: (
            len(
                {
                    e.involved_object.name
                    for e in events.list_namespaced_event(green_ns).items
                    if e.reason == "FailedScheduling" and "not supported on Fargate" in (e.message or "")
                }
            )
            == 2
        ),
        "Fargate to refuse green's two pods",
    )
    got = driver.capacity(web)
    assert len(got) == 2 and {p["capacity_provisioned"] for p in got} == {None}
    assert {p["phase"] for p in got} == {"Pending"}
    [group] = assess(got)
    assert group["billed"] is None and group["expected"] is None
    kinds = [(a["kind"], a["text"]) for a in group["advice"]]
    assert kinds[0][0] == "note" and kinds[0][1].startswith("no CapacityProvisioned annotation")
    assert kinds[1][0] == "safer" and "exceed Fargate's largest size 16vCPU 120GB" in kinds[1][1]


def test_the_simulated_platform_returns_what_the_test_set(world: SimulatedWorld) -> None:
    platform = SimulatedPlatform(world)
    web = {"kind": "Deployment", "namespace": "shop", "name": "web", "green_namespace": "shop-fargate"}
    assert platform.capacity(web) == []
    world.update(
        lambda s: s.setdefault("capacity", {}).update(
            {"Deployment/shop-fargate/web": [facts("web-0", [container("app", "1", "8Gi")], provisioned="2vCPU 9GB")]}
        )
    )
    assert [p["name"] for p in platform.capacity(web)] == ["web-0"]


# --- the report ----------------------------------------------------------------------------------------


def sizing_wave(world_name: str, usage: dict | None = None) -> dict[str, Any]:
    wave = small_wave(world_name)
    if usage is not None:
        wave["report"] = {"source": sim(world_name), "step": 1.0, "usage": usage}
    return wave


def test_usage_queries_need_a_source_and_a_service_placeholder() -> None:
    Report.model_validate({"source": sim("w"), "usage": {"cpu": CPU_Q}})  # usage alone may use the source
    with pytest.raises(ValidationError, match=re.escape("source: required when plots are listed or usage is given")):
        Report.model_validate({"usage": {"cpu": CPU_Q}})
    with pytest.raises(ValidationError, match=re.escape("memory: must contain ${service}")):
        Report.model_validate({"source": sim("w"), "usage": {"memory": "max(working_set_bytes)"}})
    with pytest.raises(ValidationError, match="give a cpu or a memory query"):
        Report.model_validate({"source": sim("w"), "usage": {}})


def test_the_report_collects_each_service_s_pods_usage_and_advice(world: SimulatedWorld) -> None:
    name = world.path.stem
    world.reset(
        {
            "capacity": {
                "Deployment/shop/web": [
                    facts(f"web-{i}", [container("app", "1", "8Gi")], provisioned="2vCPU 9GB") for i in range(2)
                ]
            },
            "metrics": {
                CPU_Q.replace("${service}", "web"): {"samples": [0.2] * 9 + [0.3]},
                MEM_Q.replace("${service}", "web"): {"samples": [1.0 * GIB] * 10},
            },
        }
    )
    config = right_sizing_config(parse_wave(sizing_wave(name, {"cpu": CPU_Q, "memory": MEM_Q}), "w.yaml"))
    section = collect_right_sizing(config, T0, T0 + 10)
    job, web = section["services"]
    assert job["service"] == "report-job" and job["groups"] == []
    assert job["error"] == "no green pod found (green not deployed in this run, or scaled to zero)"
    assert job["usage"]["errors"] == {
        "cpu": "the source returned no samples",
        "memory": "the source returned no samples",
    }
    assert web["workload"] == "Deployment shop/web" and web["error"] is None
    assert web["usage"]["cpu_p95"] == pytest.approx(0.255) and web["usage"]["memory_p95"] == GIB
    assert web["usage"]["samples"] == {"cpu": 10, "memory": 10}
    [group] = web["groups"]
    assert group["pods"] == ["web-0", "web-1"] and group["advice"][0]["kind"] == "cheaper"
    assert "fits 0.5vCPU 2GB" in group["advice"][0]["text"]  # 0.31 vCPU, 1.2 GiB + 256 MiB
    assert "us-east-1" in section["prices"] and "list prices" in section["prices"]
    json.dumps(section)  # report.json holds it as it is


def test_a_platform_or_metrics_backend_that_cannot_answer_is_said_never_raised(world: SimulatedWorld) -> None:
    name = world.path.stem
    world.reset({"faults": {"platform_down": True, "metrics_down": True}})
    config = right_sizing_config(parse_wave(sizing_wave(name, {"cpu": CPU_Q}), "w.yaml"))
    section = collect_right_sizing(config, T0, T0 + 10)
    for entry in section["services"]:
        assert entry["error"] == "the platform could not list green's pods: BackendDown: simulated platform down"
        assert entry["usage"]["errors"] == {"cpu": "simulated metrics backend down"}
    broken = {**config, "platform": {"blue": {"type": "nope"}, "green": {"type": "nope"}}}
    section = collect_right_sizing(broken, T0, T0 + 10)
    assert all("unknown platform type 'nope'" in e["error"] for e in section["services"])
    assert collect_right_sizing(None, T0, T0 + 10)["note"] == "no service to right-size"


def test_the_html_and_markdown_reports_show_the_right_sizing_section_with_its_figures(world: SimulatedWorld) -> None:
    name = world.path.stem
    world.reset(
        {"capacity": {"Deployment/shop/web": [facts("web-0", [container("app", "1", "8Gi")], provisioned="2vCPU 9GB")]}}
    )
    section = collect_right_sizing(right_sizing_config(parse_wave(sizing_wave(name), "w.yaml")), T0, T0 + 10)
    section["services"][0]["error"] = "platform said <b>no</b>"  # text from outside is escaped
    page = render_html(report_data(right_sizing=section))
    part = page[page.index("<h2>Right-sizing</h2>") :]
    assert "<h3>web <code>Deployment shop/web</code></h3>" in part
    assert "1 vCPU / 8 GiB" in part and "2vCPU 9GB" in part and f"${cost(2, 9):.4f}/h" in part
    assert "7.75 GiB (7936Mi)" in part and "−37%" in part
    assert "platform said &lt;b&gt;no&lt;/b&gt;" in part and "<b>no</b>" not in part
    markdown = render_markdown(report_data(right_sizing=section))
    assert "## Right-sizing" in markdown and "### web (Deployment shop/web)" in markdown
    assert "- 1 pod(s): requests 1 vCPU / 8 GiB; Fargate rules 2vCPU 9GB; provisioned 2vCPU 9GB" in markdown
    assert "**cheaper**: requests 1 vCPU / 8 GiB → Fargate bills 2vCPU 9GB" in markdown
    assert "Right-sizing" not in render_html(report_data())  # older report.json: no section
