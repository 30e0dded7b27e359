"""ALB router against moto in server mode, reached through the Airflow AWS connection's endpoint_url."""

from __future__ import annotations

from typing import Any

import pytest

from include.slow_injection import registry
from include.slow_injection.drivers.aws_alb import AlbConfigError, AlbRouter
from include.slow_injection.ports import Weights
from include.slow_injection.spec.loader import driver_settings_errors
from tests.support.aws import Alb, ApiCalls

STEPS = (0, 5, 25, 50, 100, 0)


def test_listener_default_action_steps_and_rolls_back(alb: Alb) -> None:
    router = alb.router()
    assert router.get_weights() == Weights(100, 0)  # a plain forward to blue
    for green in STEPS:
        router.set_weights(Weights.green_at(green))
        assert router.get_weights() == Weights.green_at(green)
        assert alb.forward_of(alb.default_actions()) == {alb.blue: 100 - green, alb.green: green}


def test_rule_weights_keep_its_conditions_and_leave_the_rest_alone(alb: Alb) -> None:
    conditions = alb.rule_named(alb.rule)["Conditions"]
    other_before, default_before = alb.rule_named(alb.other_rule), alb.default_actions()
    router = alb.router(rule_arn=alb.rule)
    for green in STEPS:
        router.set_weights(Weights.green_at(green))
        rule = alb.rule_named(alb.rule)
        assert alb.forward_of(rule["Actions"]) == {alb.blue: 100 - green, alb.green: green}
        assert rule["Conditions"] == conditions
        assert rule["Priority"] == "10"
    assert alb.rule_named(alb.other_rule) == other_before
    assert alb.default_actions() == default_before


def test_weights_outside_aws_range_are_refused_before_any_call(alb: Alb, api_calls: ApiCalls) -> None:
    router = alb.router()
    for weights in (Weights(blue=-1, green=101), Weights(blue=0, green=1000), Weights(blue=0, green=0)):
        with pytest.raises(ValueError, match="weight"):
            router.set_weights(weights)
    assert api_calls.calls == []


def test_a_forward_that_also_feeds_another_target_group_is_refused(alb: Alb) -> None:
    alb.elbv2.modify_listener(
        ListenerArn=alb.listener,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": alb.blue, "Weight": 90},
                        {"TargetGroupArn": alb.green_instance, "Weight": 10},
                    ]
                },
            }
        ],
    )
    router = alb.router()
    with pytest.raises(AlbConfigError, match="web-green-i"):
        router.get_weights()
    with pytest.raises(AlbConfigError, match="only blue's and green's"):
        router.set_weights(Weights.green_at(5))


def test_green_ready_needs_an_ip_target_group_with_enough_healthy_targets(alb: Alb) -> None:
    refused = alb.router(green_target_group_arn=alb.green_instance).green_ready()
    assert refused.state == "failed" and "`ip` target group" in refused.detail
    router = alb.router(min_healthy_targets=2)
    assert router.green_ready().state == "waiting"
    alb.elbv2.register_targets(TargetGroupArn=alb.green, Targets=[{"Id": "10.0.0.11", "Port": 8080}])
    waiting = router.green_ready()
    assert waiting.state == "waiting" and "1 healthy of 1 target(s), need 2" in waiting.detail
    alb.elbv2.register_targets(TargetGroupArn=alb.green, Targets=[{"Id": "10.0.1.12", "Port": 8080}])
    assert router.green_ready().state == "ready"


def test_missing_connection_and_same_target_groups_are_clear_errors(alb: Alb) -> None:
    with pytest.raises(ValueError, match="needs `connection`"):
        registry.build("router", {**alb.settings(), "connection": None})
    with pytest.raises(ValueError, match="must differ"):
        registry.build("router", alb.settings(green_target_group_arn=alb.blue))


def test_settings_refuse_arns_of_the_wrong_kind(alb: Alb) -> None:
    errors = driver_settings_errors("router", registry_ref(alb.settings(listener_arn=alb.blue)))
    assert errors and errors[0][0] == "listener_arn"


def registry_ref(data: dict[str, Any]) -> Any:
    from include.slow_injection.spec.models import DriverRef

    return DriverRef.model_validate(data)


@pytest.mark.parametrize("on_rule", [False, True])
def test_every_call_the_router_makes_is_in_its_iam_statements(alb: Alb, api_calls: ApiCalls, on_rule: bool) -> None:
    extra = {"rule_arn": alb.rule} if on_rule else {}
    router = alb.router(**extra)
    router.set_weights(Weights.green_at(25))
    router.get_weights()
    router.green_ready()
    statements = AlbRouter.iam_statements(
        AlbRouter.Settings.model_validate(
            {k: v for k, v in alb.settings(**extra).items() if k not in ("type", "connection")}
        )
    )
    allowed = {(a, r) for st in statements for a in st.actions for r in st.resources}
    for call in api_calls.calls:
        resource = call.params.get("RuleArn") or call.params.get("ListenerArn")
        if call.action.split(":")[1].startswith("Modify"):
            assert (call.action, resource) in allowed, call
        else:
            assert (call.action, "*") in allowed, call
    assert any(c.action.startswith("elasticloadbalancing:Modify") for c in api_calls.calls)


def test_attach_green_adds_it_at_weight_0_once_and_moves_no_traffic(alb: Alb) -> None:
    router = alb.router(rule_arn=alb.rule)
    assert [c.after for c in router.attach_green(apply=False)] == [
        "blue 100, green 0 (green attached and health-checked)"
    ]
    assert "ForwardConfig" not in alb.rule_named(alb.rule)["Actions"][0] or alb.forward_of(
        alb.rule_named(alb.rule)["Actions"]
    ) == {alb.blue: 1}  # dry-run wrote nothing
    assert len(router.attach_green(apply=True)) == 1
    assert alb.forward_of(alb.rule_named(alb.rule)["Actions"]) == {alb.blue: 100, alb.green: 0}
    assert router.get_weights() == Weights(100, 0)
    assert router.attach_green(apply=True) == []


def test_other_actions_and_stickiness_of_the_forward_are_sent_back_unchanged(alb: Alb, api_calls: ApiCalls) -> None:
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com",
            "AuthorizationEndpoint": "https://idp.example.com/auth",
            "TokenEndpoint": "https://idp.example.com/token",
            "UserInfoEndpoint": "https://idp.example.com/user",
            "ClientId": "shop",
            "ClientSecret": "s3cret",
        },
    }
    sticky = {"Enabled": True, "DurationSeconds": 600}
    forward = {
        "Type": "forward",
        "Order": 2,
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": alb.blue, "Weight": 1}],
            "TargetGroupStickinessConfig": sticky,
        },
    }
    router = alb.router(rule_arn=alb.rule)
    # what AWS's describe returns (no client secret), as the router's read
    described = [
        {k: v for k, v in oidc.items()}
        | {"AuthenticateOidcConfig": {k: v for k, v in oidc["AuthenticateOidcConfig"].items() if k != "ClientSecret"}},
        forward,
    ]
    router._actions = lambda: described  # type: ignore[method-assign]
    router._write(router._with_weights(described, 75, 25))
    sent = next(c for c in api_calls.calls if c.action == "elasticloadbalancing:ModifyRule").params["Actions"]
    assert sent[0]["Type"] == "authenticate-oidc" and sent[0]["Order"] == 1
    assert sent[0]["AuthenticateOidcConfig"]["UseExistingClientSecret"] is True
    assert sent[0]["AuthenticateOidcConfig"]["Issuer"] == "https://idp.example.com"
    assert sent[1]["Order"] == 2 and sent[1]["ForwardConfig"]["TargetGroupStickinessConfig"] == sticky
    assert sent[1]["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": alb.blue, "Weight": 75},
        {"TargetGroupArn": alb.green, "Weight": 25},
    ]
    assert "ClientSecret" not in described[0]["AuthenticateOidcConfig"]  # the read was not mutated


def test_a_rule_of_another_listener_is_refused(alb: Alb) -> None:
    other = alb.rule.replace(alb.listener.rsplit("/", 1)[-1], "0123456789abcdef")
    errors = driver_settings_errors("router", registry_ref(alb.settings(rule_arn=other)))
    assert errors and "is not a rule of listener_arn" in errors[0][1]
