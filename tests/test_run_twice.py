"""Every side-effecting step, run twice against a real backend: the first run changes the world, the
second reports no change and writes nothing (a retry or a cleared task is safe to run again).

Backends: a real HAProxy (runtime API on its admin socket), the real Kubernetes control plane
(tests/kube.py; official client through the cncf-kubernetes KubernetesHook, via a recording HTTPS proxy),
and moto in server mode (ELBv2, Route 53, EKS through the amazon provider's hooks). Each operator is executed
as a task would run it (op.execute(context)), its backend reached through an Airflow connection. "Writes
nothing" is checked on the wire: HAProxy `set` commands, Kubernetes POST/PUT/PATCH/DELETE requests (a
`dryRun=All` request persists nothing and is not counted) and every object the steps own (their
resourceVersions also move with the controllers' status writes, so spec, metadata and data are compared),
AWS mutating API calls and what describe returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.tasks.fargate_setup import EnsureFargateProfile
from include.slow_injection.tasks.operators import AttachGreen, PlatformStep, SetTraffic
from include.slow_injection.tasks.report import EvaluationReport
from include.slow_injection.tasks.rollback_steps import HandJobsBack, RollbackTraffic, RollbackWorkloads
from tests.support.aws import ACCOUNT, CONNECTION_ID, REGION, ApiCalls, MotoServer
from tests.support.kube_support import RARELY, ApiProxy, Shop
from tests.support.reruns import (
    KUBE_CONN,
    PLATFORM,
    STEP,
    Aws,
    FakeTI,
    HAProxy,
    context,
    haproxy_router,
    make_aws,
    mutations,
    sets,
)

# --- a minimal task context, as existing operator tests use --------------------------------------


def changed(result: dict[str, Any]) -> bool:
    """Whether a step's result (its XCom) says it changed the world."""
    if "changes" in result:
        return bool(result["changes"])
    if "changed" in result:
        return result["changed"]
    if "services" in result:
        return any(r["changed"] for r in result["services"].values())
    return result["change"] != "none"  # EnsureFargateProfile


# --- HAProxy: a real process, its runtime API on a unix socket -----------------------------------


# --- Kubernetes: the real control plane, reached through a recording proxy ---------------------


@pytest.fixture
def cluster(kube: Any, api_proxy: ApiProxy, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """Blue only (web Deployment at 2 replicas, report CronJob on a schedule that does not fire during the
    test), green's namespace beside it; connection `rt_kube` goes through the proxy."""
    shop = Shop.seed(kube, schedule=RARELY)
    kube.connection(monkeypatch, KUBE_CONN, api_proxy.kubeconfig_file(name="run-twice"))
    api_proxy.clear()
    return shop


def deploy(workload: dict[str, Any]) -> PlatformStep:
    return PlatformStep(
        task_id=f"deploy_green_{workload['name']}",
        action="deploy_green",
        service=workload["name"],
        platform=PLATFORM,
        workload=workload,
        **STEP,
    )


def hand_over(shop: Shop) -> PlatformStep:
    return PlatformStep(
        task_id="hand_over", action="hand_over", service="report", platform=PLATFORM, workload=shop.report, **STEP
    )


def retire(shop: Shop) -> PlatformStep:
    return PlatformStep(
        task_id="retire_blue_web", action="retire_blue", service="web", platform=PLATFORM, workload=shop.web, **STEP
    )


def restore(shop: Shop) -> RollbackWorkloads:
    return RollbackWorkloads(
        task_id="restore_blue_workloads", platform=PLATFORM, workloads={"report": shop.report, "web": shop.web}, **STEP
    )


def jobs_back(shop: Shop) -> HandJobsBack:
    return HandJobsBack(
        task_id="jobs_to_blue",
        platform=PLATFORM,
        workloads={"report": shop.report},
        wait_timeout=5,
        poll_interval=0.1,
        **STEP,
    )


def migrated(shop: Shop) -> list[Any]:
    """The forward path up to release: both copied, the job handed over, blue's web retired."""
    return [deploy(shop.report), hand_over(shop), deploy(shop.web), retire(shop)]


@dataclass
class KubeCase:
    name: str
    before: Callable[[Shop], list[Any]]  # steps run first, so the step under test has something to do
    step: Callable[[Shop], Any]
    changed_targets: list[str]  # what the first run reports changing ({blue}, {green}: the namespaces)
    end_state: Callable[[Shop], None] = field(default=lambda c: None)


def _green_web(c: Shop) -> None:
    green = c.deployment(c.green)
    assert green["spec"]["replicas"] == 2
    assert green["spec"]["template"]["metadata"]["labels"]["compute"] == "fargate"
    assert "nodeSelector" not in green["spec"]["template"]["spec"]


def _green_report_copied(c: Shop) -> None:
    assert c.suspended(c.green) and not c.suspended(c.blue)  # copied suspended; blue still runs it


def _handed_over(c: Shop) -> None:
    assert c.suspended(c.blue) and not c.suspended(c.green)


def _blue_retired(c: Shop) -> None:
    assert c.deployment(c.blue)["spec"]["replicas"] == 0


def _blue_restored(c: Shop) -> None:
    assert c.deployment(c.blue)["spec"]["replicas"] == 2
    assert c.suspended(c.green) and c.suspended(c.blue)  # blue resumes in jobs_to_blue


def _jobs_on_blue(c: Shop) -> None:
    assert not c.suspended(c.blue) and c.suspended(c.green)


KUBE_CASES = [
    KubeCase(
        "deploy_green Deployment", lambda s: [], lambda s: deploy(s.web), ["green Deployment {green}/web"], _green_web
    ),
    KubeCase(
        "deploy_green CronJob",
        lambda s: [],
        lambda s: deploy(s.report),
        ["green CronJob {green}/report"],
        _green_report_copied,
    ),
    KubeCase(
        "hand_over (hand_over)",
        lambda s: [deploy(s.report)],
        hand_over,
        ["blue CronJob {blue}/report", "green CronJob {green}/report"],
        _handed_over,
    ),
    KubeCase("retire_blue", lambda s: [deploy(s.web)], retire, ["blue Deployment {blue}/web"], _blue_retired),
    KubeCase(
        "restore_blue_workloads",
        migrated,
        restore,
        ["green CronJob {green}/report", "blue Deployment {blue}/web"],
        _blue_restored,
    ),
    KubeCase(
        "jobs_to_blue", lambda s: [*migrated(s), restore(s)], jobs_back, ["blue CronJob {blue}/report"], _jobs_on_blue
    ),
]


@pytest.mark.parametrize("case", KUBE_CASES, ids=[c.name for c in KUBE_CASES])
def test_a_kubernetes_step_run_twice_writes_once(cluster: Shop, api_proxy: ApiProxy, case: KubeCase) -> None:
    """Writes are counted on the wire (the proxy); a dry-run request (`dryRun=All`, how a converge asks the
    API server what a replace would change) persists nothing and is not a write. "No object changed" compares
    what the steps own (uid, generation, labels, annotations, spec, data, a CronJob's lastScheduleTime), not
    resourceVersions, which the real controllers move on their own (status)."""
    for step in case.before(cluster):
        step.execute(context())
    api_proxy.clear()

    first = case.step(cluster).execute(context())
    assert [c["target"] for c in first["changes"]] == [cluster.fill(t) for t in case.changed_targets]
    assert all(c["applied"] for c in first["changes"])
    assert api_proxy.writes(), "the first run reported changes but wrote nothing to the API server"
    case.end_state(cluster)

    cluster.settled()
    state = cluster.owned_state()
    api_proxy.clear()
    second = case.step(cluster).execute(context(try_number=2))  # a retry, or the task cleared and run again
    assert not changed(second), second
    assert api_proxy.writes() == []
    # 404: an absent object read; 409: a controller wrote the object between read and replace (read again)
    assert not [r for r in api_proxy.requests if r.status >= 400 and r.status not in (404, 409)], api_proxy.requests
    cluster.settled()
    assert cluster.owned_state() == state  # no object changed, none added or removed
    assert api_proxy.requests, "the second run must read the world, not trust the first"
    case.end_state(cluster)


# --- HAProxy steps -----------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [5, 100, 0])
def test_set_traffic_on_haproxy_run_twice_sets_the_weights_once(
    haproxy: HAProxy, haproxy_commands: list[str], weight: int
) -> None:
    haproxy.set_green(25)  # a step in progress: every weight here is a change
    step = SetTraffic(task_id="set_traffic", service="web", router=haproxy_router(), weight=weight, **STEP)

    first = step.execute(context())
    assert first["changed"] and first["after"] == f"blue {100 - weight}, green {weight}"
    blue, green = f"set weight web/blue {100 - weight}", f"set weight web/green {weight}"
    assert sets(haproxy_commands) == [f"{green}; {blue}" if weight > 25 else f"{blue}; {green}"]  # rising first
    raw = haproxy.raw_weights()
    assert raw[1].startswith(f"{weight} ")

    haproxy_commands.clear()
    second = step.execute(context(try_number=2))
    assert not second["changed"] and second["before"] == second["after"] == first["after"]
    assert sets(haproxy_commands) == [] and haproxy_commands, "the second run reads, never writes"
    assert haproxy.raw_weights() == raw


def test_rollback_traffic_on_haproxy_run_twice_sets_blue_once(haproxy: HAProxy, haproxy_commands: list[str]) -> None:
    haproxy.set_green(25)
    step = RollbackTraffic(task_id="traffic_to_blue", routers={"web": haproxy_router()}, **STEP)

    first = step.execute(context())
    assert first["services"]["web"]["changed"] and haproxy.green() == 0
    assert len(sets(haproxy_commands)) == 1
    raw = haproxy.raw_weights()

    haproxy_commands.clear()
    second = step.execute(context(try_number=2))
    assert not changed(second) and second["services"]["web"]["before"] == "blue 100, green 0"
    assert sets(haproxy_commands) == [] and haproxy.raw_weights() == raw


def test_attach_green_on_haproxy_never_touches_the_runtime_api(haproxy: HAProxy, haproxy_commands: list[str]) -> None:
    """HAProxy's green server is in the backend already (weight 0): nothing to attach, either run."""
    raw = haproxy.raw_weights()
    for try_number in (1, 2):
        result = AttachGreen(task_id="attach_green", service="web", router=haproxy_router(), **STEP).execute(
            context(try_number)
        )
        assert result["changes"] == []
    assert haproxy_commands == [] and haproxy.raw_weights() == raw


# --- AWS through moto: ALB, Route 53, EKS Fargate profile ----------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fargate-pods"


@pytest.fixture
def aws_world(aws: MotoServer) -> Aws:
    return make_aws(aws)


def profile_spec(a: Aws) -> dict[str, Any]:
    return {
        "cluster": "prod",
        "name": "shop-green",
        "pod_execution_role_arn": ROLE,
        "subnets": list(a.subnets[:1]),
        "selectors": [{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}],
        "aws_connection": CONNECTION_ID,
        "region": REGION,
        "timeout": 60.0,
    }


@dataclass
class AwsCase:
    name: str
    before: Callable[[Aws], None]
    step: Callable[[Aws], Any]
    writes: list[str]  # the mutating calls of the first run
    end_state: Callable[[Aws], None]


def _alb_at(green: int) -> Callable[[Aws], None]:
    def check(a: Aws) -> None:
        assert a.alb_weights() == {"blue": 100 - green, "green": green}

    return check


def _records_at(green: int) -> Callable[[Aws], None]:
    def check(a: Aws) -> None:
        assert a.record_weights() == {"blue": 100 - green, "green": green}

    return check


def _profile_created(a: Aws) -> None:
    [profile] = a.profiles()
    assert profile["fargateProfileName"] == "shop-green" and profile["podExecutionRoleArn"] == ROLE


def _alb_green_at(green: int) -> Callable[[Aws], None]:
    def move(a: Aws) -> None:
        SetTraffic(task_id="s", service="web", router=a.alb_router(), weight=green, **STEP).execute(context())

    return move


AWS_CASES = [
    AwsCase(
        "set_traffic alb",
        lambda a: None,
        lambda a: SetTraffic(task_id="set_traffic", service="web", router=a.alb_router(), weight=25, **STEP),
        ["elasticloadbalancing:ModifyListener"],
        _alb_at(25),
    ),
    AwsCase(
        "set_traffic route53",
        lambda a: None,
        lambda a: SetTraffic(task_id="set_traffic", service="web", router=a.route53_router(), weight=25, **STEP),
        ["route53:ChangeResourceRecordSets"],
        _records_at(25),
    ),
    AwsCase(
        "attach_green alb",
        lambda a: None,
        lambda a: AttachGreen(task_id="attach_green", service="web", router=a.alb_router(), **STEP),
        ["elasticloadbalancing:ModifyListener"],
        _alb_at(0),
    ),
    AwsCase(
        "attach_green route53",
        lambda a: None,
        lambda a: AttachGreen(task_id="attach_green", service="web", router=a.route53_router(), **STEP),
        ["route53:ChangeResourceRecordSets"],
        _records_at(0),
    ),
    AwsCase(
        "traffic_to_blue alb",
        _alb_green_at(50),
        lambda a: RollbackTraffic(task_id="traffic_to_blue", routers={"web": a.alb_router()}, **STEP),
        ["elasticloadbalancing:ModifyListener"],
        _alb_at(0),
    ),
    AwsCase(
        "ensure_fargate_profile",
        lambda a: None,
        lambda a: EnsureFargateProfile(task_id="ensure_fargate_profile", profile=profile_spec(a), **STEP),
        ["eks:CreateFargateProfile"],
        _profile_created,
    ),
]


@pytest.mark.parametrize("case", AWS_CASES, ids=[c.name for c in AWS_CASES])
def test_an_aws_step_run_twice_writes_once(aws_world: Aws, api_calls: ApiCalls, case: AwsCase) -> None:
    case.before(aws_world)
    api_calls.calls.clear()

    first = case.step(aws_world).execute(context())
    assert changed(first), first
    assert mutations(api_calls) == case.writes
    case.end_state(aws_world)

    state, api_calls.calls[:] = aws_world.state(), []
    second = case.step(aws_world).execute(context(try_number=2))
    assert not changed(second), second
    assert mutations(api_calls) == [] and api_calls.calls, "the second run reads, never writes"
    assert aws_world.state() == state
    case.end_state(aws_world)


# --- the evaluation report (files) ----------------------------------------------------------------


def test_evaluation_report_written_twice_is_the_same_report(reports_dir: Path) -> None:
    xcoms = {
        ("gradual_transition.web.step1_25pct.set_traffic", "return_value"): {
            "service": "web",
            "before": "blue 100, green 0",
            "after": "blue 75, green 25",
            "changed": True,
            "dry_run": False,
        },
        ("gradual_transition.web.step1_25pct.gate_errors", "verdict"): {
            "gate": "errors",
            "kind": "metric",
            "status": "fail",
            "reason": "0.2 ≥ 0.05",
            "measurements": [{"value": 0.2}],
        },
        ("gradual_transition.web.step1_25pct.decide", "decision"): {
            "stage": "gradual_transition/web/step1_25pct",
            "outcome": "rollback",
            "reasons": ["gate errors failed"],
        },
    }
    step = EvaluationReport(
        task_id="evaluation_report",
        wave_id="twice",
        action_ids=["gradual_transition.web.step1_25pct.set_traffic"],
        gate_ids=["gradual_transition.web.step1_25pct.gate_errors"],
        decision_ids=["gradual_transition.web.step1_25pct.decide"],
        outcome_ids={
            "completed": "post_release.wave_completed",
            "rolled_back": "rollback.wave_rolled_back",
            "held": "wave_held",
        },
    )
    first = step.execute(context(ti=FakeTI(1, xcoms)))
    folder = Path(first["location"].removeprefix("file://"))
    written = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert {"report.json", "report.md"} <= set(written) and first["outcome"] == "rolled back"
    assert "blue 100, green 0 → blue 75, green 25" in written["report.md"].decode()

    second = step.execute(context(ti=FakeTI(2, xcoms)))
    again = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert second == first
    assert set(again) == set(written)  # the same files rewritten in place, none added
    assert again["report.md"] == written["report.md"]
    assert timeless(again["report.json"]) == timeless(written["report.json"])


def timeless(report_json: bytes) -> dict[str, Any]:
    """report.json without what depends on when it was written (the generation time, its window)."""
    data = json.loads(report_json)
    return {k: v for k, v in data.items() if k not in ("generated_at", "started_at", "series")}
