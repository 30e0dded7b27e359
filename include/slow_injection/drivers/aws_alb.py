"""Application Load Balancer router: weighted forward to blue's and green's target groups, for an ALB
nobody else owns.

The weights live on one forward action: the listener's default action, or one listener rule's
(`rule_arn`, never the listener's default rule: AWS refuses ModifyRule there). Every other action of that
listener or rule (authentication, fixed responses) and every rule condition stays as it is; the forward
action keeps its stickiness unless `disable_stickiness` (sticky clients ignore weights, so it is warned
about). An ALB, listener or rule tagged by the AWS Load Balancer Controller is refused before anything is
written: the controller would undo the weights; its ALBs take the `alb_ingress` router. Connection: an
Airflow AWS connection (credentials, region, endpoint_url).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.slow_injection.aws.iam import Statement
from include.slow_injection.ports import Change, Readiness, Weights

log = logging.getLogger(__name__)

MAX_WEIGHT = 999  # AWS's bound for a target group weight in a forward action
# Tags the AWS Load Balancer Controller puts on what it owns (from an Ingress, a Service, or any of them).
CONTROLLER_TAGS = ("elbv2.k8s.aws/cluster", "ingress.k8s.aws/stack", "service.k8s.aws/stack")
_ARN = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"


class AlbConfigError(RuntimeError):
    """The listener or rule is not in a shape this router can own."""


def check_weight(name: str, weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"alb: {name} weight must be an integer 0..{MAX_WEIGHT} (AWS's range), got {weight!r}")
    return weight


class AlbRouter:
    port = "router"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        listener_arn: str = Field(pattern=_ARN + r"listener/")
        rule_arn: str | None = Field(
            default=None,
            pattern=_ARN + r"listener-rule/",
            description="weights on this rule's forward action instead of the default action",
        )
        blue_target_group_arn: str = Field(pattern=_ARN + r"targetgroup/")
        green_target_group_arn: str = Field(pattern=_ARN + r"targetgroup/")
        min_healthy_targets: int = Field(
            default=1, ge=1, le=1000, description="healthy green targets required before any traffic moves"
        )
        require_ip_targets: bool = Field(
            default=True, description="Fargate pods register by IP: green's target group must have target type ip"
        )
        disable_stickiness: bool = Field(
            default=False,
            description="turn the forward's target-group stickiness off while the wave writes it: "
            "sticky clients ignore the weights (a rollback would leave them on green)",
        )
        region: str | None = None

        @model_validator(mode="after")
        def _rule_of_listener(self) -> AlbRouter.Settings:
            # listener/app/LB/ID/LISTENER → listener-rule/app/LB/ID/LISTENER/RULE
            listener = self.listener_arn.split(":listener/", 1)[-1]
            if self.rule_arn and not self.rule_arn.split(":listener-rule/", 1)[-1].startswith(listener + "/"):
                raise ValueError(f"rule_arn: {self.rule_arn} is not a rule of listener_arn {self.listener_arn}")
            return self

    def __init__(self, elbv2: Any, settings: Settings) -> None:
        self.elbv2, self.settings = elbv2, settings
        if settings.blue_target_group_arn == settings.green_target_group_arn:
            raise ValueError("alb: blue_target_group_arn and green_target_group_arn must differ")
        self._owner_checked = False

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> AlbRouter:
        if not connection_id:
            raise ValueError("alb router needs `connection` (an Airflow AWS connection)")
        from include.slow_injection.aws.hooks import ElbV2Hook

        return cls(ElbV2Hook(aws_conn_id=connection_id, region_name=settings.region).conn, settings)

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Statement]:
        owned = settings.rule_arn or settings.listener_arn
        modify = "elasticloadbalancing:ModifyRule" if settings.rule_arn else "elasticloadbalancing:ModifyListener"
        return [
            Statement((modify,), (owned,), "alb weights"),
            # Describe* calls have no resource-level permissions in ELBv2.
            Statement(
                (
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth",
                    "elasticloadbalancing:DescribeTags",
                ),
                ("*",),
                "alb reads",
            ),
        ]

    def describe(self) -> str:
        where = self.settings.rule_arn or self.settings.listener_arn
        return f"alb {where.split('/', 1)[-1]}"

    # -- whose ALB is it ----------------------------------------------------------------------------

    def check_owner(self) -> None:
        """Refuse, before any read or write of weights, what this router must not own: a listener or rule of
        an ALB the AWS Load Balancer Controller manages (it reconciles them back to its Ingress or Service,
        undoing the weights, possibly after blue was retired), and a listener's default rule (ModifyRule is
        refused there: its actions are the listener's default actions)."""
        if self._owner_checked:
            return
        s = self.settings
        load_balancer = s.listener_arn.replace(":listener/", ":loadbalancer/", 1).rsplit("/", 1)[0]
        arns = [a for a in (s.rule_arn, s.listener_arn, load_balancer) if a]
        kinds = {s.rule_arn: "rule", s.listener_arn: "listener", load_balancer: "load balancer"}
        for description in self.elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]:
            tags = {t["Key"]: t.get("Value", "") for t in description.get("Tags") or []}
            owned = [f"{key}={tags[key]}" for key in CONTROLLER_TAGS if key in tags]
            if owned:
                arn = description["ResourceArn"]
                raise AlbConfigError(
                    f"alb: the {kinds.get(arn, 'resource')} {arn.split('/', 1)[-1]} belongs to the AWS Load Balancer "
                    f"Controller (tag {', '.join(owned)}): it reconciles its ALBs back to the Kubernetes objects and "
                    "would undo these weights. Use the `alb_ingress` router (the weights on the Ingress's "
                    "alb.ingress.kubernetes.io/actions annotation), or `gateway_api` for an HTTPRoute"
                )
        if s.rule_arn:
            rule = self.elbv2.describe_rules(RuleArns=[s.rule_arn])["Rules"][0]
            if rule.get("IsDefault"):
                raise AlbConfigError(
                    f"alb: rule_arn {s.rule_arn.split('/', 1)[-1]} is the listener's default rule; AWS "
                    "refuses ModifyRule on it (OperationNotPermitted): leave rule_arn out to set the "
                    "weights on the listener's default action"
                )
        self._owner_checked = True

    def _stickiness_warning(self, forward: dict[str, Any]) -> str | None:
        sticky = (forward.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {}
        if not sticky.get("Enabled"):
            return None
        if self.settings.disable_stickiness:
            return (
                f"alb: {self.describe()} has target-group stickiness on ({sticky.get('DurationSeconds')} s); "
                "disable_stickiness turns it off with the next write"
            )
        return (
            f"alb: {self.describe()} has target-group stickiness on ({sticky.get('DurationSeconds')} s): sticky "
            "clients stay on the target group they had whatever the weights say, so a rollback leaves them on "
            "green and retiring blue strands blue's; set disable_stickiness to turn it off for the wave"
        )

    # -- reading ---------------------------------------------------------------------------------

    def _actions(self) -> list[dict[str, Any]]:
        self.check_owner()
        if self.settings.rule_arn:
            rules = self.elbv2.describe_rules(RuleArns=[self.settings.rule_arn])["Rules"]
            return rules[0]["Actions"]
        listeners = self.elbv2.describe_listeners(ListenerArns=[self.settings.listener_arn])["Listeners"]
        return listeners[0]["DefaultActions"]

    def _forward_index(self, actions: list[dict[str, Any]]) -> int:
        forwards = [i for i, a in enumerate(actions) if a.get("Type") == "forward"]
        if len(forwards) != 1:
            raise AlbConfigError(
                f"alb: {self.describe()} has {len(forwards)} forward actions; this router needs exactly one"
            )
        return forwards[0]

    def _current(self, action: dict[str, Any]) -> dict[str, int]:
        """Weight per target group ARN on a forward action (a plain TargetGroupArn is weight 1)."""
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        return {action["TargetGroupArn"]: 1} if action.get("TargetGroupArn") else {}

    def _split(self, current: dict[str, int]) -> tuple[int, int]:
        blue_arn, green_arn = self.settings.blue_target_group_arn, self.settings.green_target_group_arn
        strangers = {arn: w for arn, w in current.items() if arn not in (blue_arn, green_arn) and w > 0}
        if strangers:
            raise AlbConfigError(
                f"alb: {self.describe()} also forwards to {', '.join(strangers)}; "
                "only blue's and green's target groups may take traffic here"
            )
        return current.get(blue_arn, 0), current.get(green_arn, 0)

    def get_weights(self) -> Weights:
        actions = self._actions()
        blue, green = self._split(self._current(actions[self._forward_index(actions)]))
        if blue + green == 0:
            raise AlbConfigError(f"alb: {self.describe()} sends no traffic to blue or green (both weights 0)")
        green_pct = round(100 * green / (blue + green))
        return Weights(blue=100 - green_pct, green=green_pct)

    # -- writing ---------------------------------------------------------------------------------

    def _with_weights(self, actions: list[dict[str, Any]], blue: int, green: int) -> list[dict[str, Any]]:
        out = copy.deepcopy(actions)
        index = self._forward_index(out)
        forward = out[index]
        current = self._current(forward)
        self._split(current)  # refuses a forward that also feeds other target groups
        forward.pop("TargetGroupArn", None)  # AWS takes either, and ForwardConfig carries the weights
        config = dict(forward.get("ForwardConfig") or {})
        config["TargetGroups"] = [
            {"TargetGroupArn": self.settings.blue_target_group_arn, "Weight": blue},
            {"TargetGroupArn": self.settings.green_target_group_arn, "Weight": green},
        ]
        if self.settings.disable_stickiness and (config.get("TargetGroupStickinessConfig") or {}).get("Enabled"):
            config["TargetGroupStickinessConfig"] = {"Enabled": False}
        forward["ForwardConfig"] = config
        for action in out:
            if action.get("Type") == "authenticate-oidc":
                # Describe never returns the client secret; keep the one AWS already has.
                action.setdefault("AuthenticateOidcConfig", {})["UseExistingClientSecret"] = True
        return out

    def _write(self, actions: list[dict[str, Any]]) -> None:
        if self.settings.rule_arn:
            self.elbv2.modify_rule(RuleArn=self.settings.rule_arn, Actions=actions)
        else:
            self.elbv2.modify_listener(ListenerArn=self.settings.listener_arn, DefaultActions=actions)

    def attach_green(self, apply: bool) -> list[Change]:
        """Green's target group joins the forward action at weight 0: an ALB health-checks only target
        groups a listener forwards to (others report `unused`), so green's targets could never turn
        healthy before traffic moved. Blue keeps all the traffic."""
        actions = self._actions()
        forward = actions[self._forward_index(actions)]
        current = self._current(forward)
        warning = self._stickiness_warning(forward)
        if warning:
            log.warning("%s", warning)
        if self.settings.green_target_group_arn in current:
            if not (warning and self.settings.disable_stickiness):
                return []
            blue, green = self._split(current)
            change = Change(
                f"router {self.describe()}",
                "target-group stickiness on",
                f"stickiness off (weights as they were: blue {blue}, green {green})",
                applied=apply,
            )
            if apply:
                self._write(self._with_weights(actions, blue, green))
            return [change]
        blue, green = self._split(current)
        if blue == 0:
            raise AlbConfigError(
                f"alb: {self.describe()} does not forward to blue's target group {self.settings.blue_target_group_arn}"
            )
        change = Change(
            f"router {self.describe()}",
            "forward to blue only",
            "blue 100, green 0 (green attached and health-checked)",
            applied=apply,
        )
        if apply:
            self._write(self._with_weights(actions, 100, 0))
        return [change]

    def set_weights(self, weights: Weights) -> None:
        blue, green = check_weight("blue", weights.blue), check_weight("green", weights.green)
        if blue + green == 0:
            raise ValueError("alb: blue and green weights are both 0; traffic would have nowhere to go")
        current = self._actions()
        warning = self._stickiness_warning(current[self._forward_index(current)])
        if warning:
            log.warning("%s", warning)
        self._write(self._with_weights(current, blue, green))
        written = self._actions()
        if self._split(self._current(written[self._forward_index(written)])) != (blue, green):
            raise AlbConfigError(
                f"alb: {self.describe()} did not keep the weights written "
                f"(blue {blue}, green {green}); another tool may be changing it"
            )

    # -- green's readiness -----------------------------------------------------------------------

    def green_ready(self) -> Readiness:
        self.check_owner()
        arn = self.settings.green_target_group_arn
        group = self.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
        name = group.get("TargetGroupName", arn)
        if self.settings.require_ip_targets and group.get("TargetType") != "ip":
            return Readiness(
                "failed",
                f"green target group {name} has target type {group.get('TargetType')}; "
                "Fargate pods register by IP, so it must be an `ip` target group",
            )
        health = self.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        states = [h.get("TargetHealth", {}) for h in health]
        healthy = sum(1 for s in states if s.get("State") == "healthy")
        others: dict[str, int] = {}
        for s in states:
            if s.get("State") != "healthy":
                key = f"{s.get('State', 'unknown')} ({s['Reason']})" if s.get("Reason") else s.get("State", "unknown")
                others[key] = others.get(key, 0) + 1
        shown = "".join(f", {n} {state}" for state, n in sorted(others.items()))
        detail = (
            f"green target group {name}: {healthy} healthy of {len(states)} target(s){shown}, "
            f"need {self.settings.min_healthy_targets}"
            + (
                "; none registered: is a TargetGroupBinding (AWS Load Balancer Controller) registering green's pods?"
                if not states
                else ""
            )
        )
        actions = self._actions()
        warning = self._stickiness_warning(actions[self._forward_index(actions)])
        if warning:
            detail += f"; warning: {warning.removeprefix('alb: ')}"
        return Readiness("ready" if healthy >= self.settings.min_healthy_targets else "waiting", detail)
