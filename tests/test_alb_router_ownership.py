"""The direct ALB router stays for ALBs nobody else owns: against moto in server mode, it refuses what the
AWS Load Balancer Controller tagged (naming the router to use instead) and a listener's default rule, before
writing anything; it warns about target-group stickiness and can turn it off for the wave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from include.slow_injection import registry
from include.slow_injection.drivers.aws_alb import AlbConfigError, AlbRouter
from include.slow_injection.ports import Weights
from tests.support.aws import CONNECTION_ID, ApiCalls, MotoServer, load_balancer_in_new_vpc

STICKY = {"Enabled": True, "DurationSeconds": 3600}


@dataclass
class Alb:
    elbv2: Any
    lb: str
    listener: str
    rule: str
    blue: str
    green: str

    def router(self, **extra: Any) -> AlbRouter:
        return registry.build(
            "router",
            {
                "type": "alb",
                "connection": CONNECTION_ID,
                "listener_arn": self.listener,
                "blue_target_group_arn": self.blue,
                "green_target_group_arn": self.green,
                **extra,
            },
            service="web",
        )

    def forward(self, rule: str | None = None) -> dict[str, Any]:
        if rule:
            actions = self.elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
        else:
            actions = self.elbv2.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]["DefaultActions"]
        return next(a for a in actions if a["Type"] == "forward")

    def tag(self, arn: str, key: str, value: str) -> None:
        self.elbv2.add_tags(ResourceArns=[arn], Tags=[{"Key": key, "Value": value}])


@pytest.fixture
def alb(aws: MotoServer) -> Alb:
    elbv2 = aws.client("elbv2")
    lb, (blue, green), _, _ = load_balancer_in_new_vpc(aws, "shop", "10.0.0.0/16", ("web-blue", "web-green"))
    forward = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": blue, "Weight": 1}],
            "TargetGroupStickinessConfig": STICKY,
        },
    }
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[forward]
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=10,
        Actions=[forward],
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/shop/*"]}}],
    )["Rules"][0]["RuleArn"]
    elbv2.register_targets(TargetGroupArn=green, Targets=[{"Id": "10.0.0.11", "Port": 8080}])
    return Alb(elbv2, lb["LoadBalancerArn"], listener, rule, blue, green)


@pytest.mark.parametrize(
    ("where", "key"),
    [("listener", "elbv2.k8s.aws/cluster"), ("rule", "ingress.k8s.aws/stack"), ("lb", "service.k8s.aws/stack")],
)
def test_a_controller_owned_alb_is_refused_before_anything_is_written(
    alb: Alb, api_calls: ApiCalls, where: str, key: str
) -> None:
    alb.tag(getattr(alb, where), key, "shop/web")
    router = alb.router(rule_arn=alb.rule)
    before = alb.forward(alb.rule)
    for call in (
        router.get_weights,
        lambda: router.set_weights(Weights.green_at(5)),
        lambda: router.attach_green(apply=True),
        router.green_ready,
    ):
        with pytest.raises(
            AlbConfigError, match=f"AWS Load Balancer Controller \\(tag {key}=shop/web\\).*`alb_ingress`"
        ):
            call()
    assert alb.forward(alb.rule) == before
    assert not [c for c in api_calls.calls if c.action.startswith("elasticloadbalancing:Modify")]


def test_the_plan_step_reads_the_world_first_so_the_refusal_comes_at_the_start(alb: Alb) -> None:
    """plan_wave reads every router's weights before any task acts: that read is the refusal."""
    alb.tag(alb.listener, "ingress.k8s.aws/stack", "shop/web")
    with pytest.raises(AlbConfigError, match="belongs to the AWS Load Balancer Controller"):
        alb.router().get_weights()


def test_a_listeners_default_rule_is_refused_for_modify_rule(alb: Alb) -> None:
    default = next(r for r in alb.elbv2.describe_rules(ListenerArn=alb.listener)["Rules"] if r["IsDefault"])
    router = alb.router(rule_arn=default["RuleArn"])
    with pytest.raises(AlbConfigError, match="default rule; AWS refuses ModifyRule.*leave rule_arn out"):
        router.set_weights(Weights.green_at(5))
    assert alb.router().get_weights() == Weights(100, 0)  # the listener's default action is the way


def test_stickiness_is_warned_about_and_kept_unless_the_wave_turns_it_off(
    alb: Alb, caplog: pytest.LogCaptureFixture
) -> None:
    router = alb.router(rule_arn=alb.rule)
    router.attach_green(apply=True)
    assert "sticky clients stay on the target group" in caplog.text
    assert alb.forward(alb.rule)["ForwardConfig"]["TargetGroupStickinessConfig"] == STICKY
    ready = router.green_ready()
    assert "warning: " in ready.detail and "set disable_stickiness" in ready.detail
    off = alb.router(rule_arn=alb.rule, disable_stickiness=True)
    [change] = off.attach_green(apply=True)  # green is attached already: only the stickiness changes
    assert change.after == "stickiness off (weights as they were: blue 100, green 0)"
    config = alb.forward(alb.rule)["ForwardConfig"]
    assert config["TargetGroupStickinessConfig"]["Enabled"] is False
    assert {g["TargetGroupArn"]: g["Weight"] for g in config["TargetGroups"]} == {alb.blue: 100, alb.green: 0}
    assert off.attach_green(apply=True) == []  # and only once
    off.set_weights(Weights.green_at(25))
    assert alb.forward(alb.rule)["ForwardConfig"]["TargetGroupStickinessConfig"]["Enabled"] is False
    assert "warning" not in off.green_ready().detail


def test_stickiness_off_on_every_write_of_the_listener_default_action(alb: Alb) -> None:
    router = alb.router(disable_stickiness=True)
    router.set_weights(Weights.green_at(5))
    config = alb.forward()["ForwardConfig"]
    assert config["TargetGroupStickinessConfig"]["Enabled"] is False
    assert router.get_weights() == Weights.green_at(5)


def test_an_alb_nobody_else_owns_still_works_as_before(alb: Alb) -> None:
    alb.tag(alb.lb, "team", "shop")  # tags of its own are fine
    router = alb.router(rule_arn=alb.rule)
    for green in (5, 25, 100, 0):
        router.set_weights(Weights.green_at(green))
        assert router.get_weights() == Weights.green_at(green)
