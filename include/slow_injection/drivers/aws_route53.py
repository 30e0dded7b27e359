"""Route 53 router: a pair of weighted records (SetIdentifier blue and green) of one name and type.

Both weights change in one ChangeBatch, so the split moves atomically, and set_weights returns once
Route 53 reports the change INSYNC on its name servers. Every other record of the zone, including
other set identifiers of the same name, stays as it is. Resolvers keep the old answer for up to the
record's TTL, so the plan warns when a step's bake is shorter. Connection: an Airflow AWS connection
(credentials, optional endpoint_url); Route 53 is global, so `region` only matters for signing.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from include.slow_injection.aws.iam import Statement, arn
from include.slow_injection.durations import format_duration
from include.slow_injection.ports import Change, Readiness, Weights
from include.slow_injection.spec.models import Duration

log = logging.getLogger(__name__)

MAX_WEIGHT = 255  # Route 53's range for a weighted record
PAGE_SIZE = 300  # ListResourceRecordSets' largest page
HEALTHY_SHARE = 0.18  # Route 53 counts an endpoint healthy when more than this share of checkers do
# A load balancer's DNS name, and its region: ALB/CLB `name-1.eu-west-1.elb.amazonaws.com`, NLB
# `name-1.elb.eu-west-1.amazonaws.com` (either may start `dualstack.`; China ends `.com.cn`).
ELB_DNS = re.compile(
    r"^(?:dualstack\.)?[a-z0-9.-]+?\.(?:(?P<alb>[a-z]{2}(?:-[a-z]+)+-\d)\.elb|elb\.(?P<nlb>[a-z]{2}(?:-[a-z]+)+-\d))"
    r"\.amazonaws\.com(?:\.cn)?\.?$"
)


def elb_region(dns: str) -> str | None:
    """The region of the load balancer a DNS name belongs to; None when it names no load balancer."""
    match = ELB_DNS.match(dns.strip().lower())
    return (match.group("alb") or match.group("nlb")) if match else None


def _bare(dns: str) -> str:
    return dns.strip().lower().rstrip(".").removeprefix("dualstack.")


class Route53ConfigError(RuntimeError):
    """The weighted record pair is not in a shape this router can own."""


def check_weight(name: str, weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(
            f"route53: {name} weight must be an integer 0..{MAX_WEIGHT} (Route 53's range), got {weight!r}"
        )
    return weight


def dns_name(name: str) -> str:
    """The form Route 53 lists names in: lower case, trailing dot, '*' escaped as \\052."""
    name = name.strip().lower().replace("\\052", "*")
    return name if name.endswith(".") else name + "."


class Alias(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    dns_name: str = Field(min_length=1, description="e.g. an ALB's DNS name")
    hosted_zone_id: str = Field(min_length=1, description="the alias target's own zone (an ALB's canonical zone id)")
    evaluate_target_health: bool = False


class Target(BaseModel):
    """What one side's record answers: resource record values, or an alias."""

    model_config = ConfigDict(extra="forbid", strict=True)
    values: list[str] | None = Field(default=None, min_length=1)
    alias: Alias | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        if (self.values is None) == (self.alias is None):
            raise ValueError("give exactly one of `values` (resource records) or `alias`")
        return self


class Route53Router:
    port = "router"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        hosted_zone_id: str = Field(description="zone holding the record, e.g. Z1D633PJN98FT9")
        record_name: str = Field(description="e.g. shop.example.com.")
        record_type: Literal["A", "AAAA", "CNAME"]
        ttl: int = Field(
            default=60,
            ge=0,
            le=2147483647,
            description="seconds, for `values` records; alias records take their target's TTL "
            "(60 s for load balancers): set it to that so the plan can warn",
        )
        blue: Target
        green: Target
        blue_identifier: str = Field(default="blue", min_length=1, max_length=128)
        green_identifier: str = Field(default="green", min_length=1, max_length=128)
        allow_other_weighted_records: bool = Field(
            default=False,
            description="other set identifiers of the name may keep a weight > 0 (then 100 % "
            "green is only blue's and green's share)",
        )
        wait_timeout: Annotated[Duration, Field(gt=0)] = Field(default=300.0, description="longest wait for INSYNC")
        poll_interval: Annotated[Duration, Field(gt=0)] = Field(default=5.0, description="between GetChange calls")
        region: str | None = None

        @field_validator("hosted_zone_id")
        @classmethod
        def _zone_id(cls, value: str) -> str:
            zone = value.removeprefix("/hostedzone/")
            if not zone.isalnum() or not zone.isascii() or len(zone) > 32:
                raise ValueError(f"must be a hosted zone id like Z1D633PJN98FT9, got {value!r}")
            return zone

        @field_validator("record_name")
        @classmethod
        def _record_name(cls, value: str) -> str:
            name = dns_name(value)
            if name == "." or any(ch.isspace() for ch in name) or ".." in name:
                raise ValueError(f"must be a DNS name like shop.example.com., got {value!r}")
            return name

        @model_validator(mode="after")
        def _consistent(self) -> Route53Router.Settings:
            if self.blue_identifier == self.green_identifier:
                raise ValueError(
                    f"green_identifier: must differ from blue_identifier, both are {self.blue_identifier!r}"
                )
            for side in ("blue", "green"):
                values = getattr(self, side).values or []
                if self.record_type == "CNAME" and len(values) > 1:
                    raise ValueError(f"{side}.values: a CNAME record holds exactly one value, got {len(values)}")
                if self.record_type in ("A", "AAAA"):
                    kind = ipaddress.IPv4Address if self.record_type == "A" else ipaddress.IPv6Address
                    for value in values:
                        try:
                            kind(value)
                        except ValueError:
                            raise ValueError(
                                f"{side}.values: {value!r} is not an "
                                f"IPv{4 if self.record_type == 'A' else 6} address "
                                f"(record_type {self.record_type})"
                            ) from None
            return self

    def __init__(
        self,
        route53: Any,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        elbv2: Callable[[str], Any] | None = None,
    ) -> None:
        self.route53, self.settings, self.sleep, self.clock = route53, settings, sleep, clock
        self._elbv2 = elbv2  # region → an ELBv2 client: for green's load balancer health

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> Route53Router:
        if not connection_id:
            raise ValueError("route53 router needs `connection` (an Airflow AWS connection)")
        # boto3 only when a task builds the driver
        from include.slow_injection.aws.hooks import ElbV2Hook, Route53Hook

        return cls(
            Route53Hook(aws_conn_id=connection_id, region_name=settings.region).conn,
            settings,
            elbv2=lambda region: ElbV2Hook(aws_conn_id=connection_id, region_name=region).conn,
        )

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Statement]:
        alias = settings.green.alias
        health = (
            [
                # ELBv2's Describe* actions take no resource-level permission: "*" is the only resource.
                Statement(
                    (
                        "elasticloadbalancing:DescribeLoadBalancers",
                        "elasticloadbalancing:DescribeTargetGroups",
                        "elasticloadbalancing:DescribeTargetHealth",
                    ),
                    ("*",),
                    "green's load balancer health (EvaluateTargetHealth)",
                )
            ]
            if alias and alias.evaluate_target_health and elb_region(alias.dns_name)
            else []
        )
        return health + [
            Statement(
                ("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"),
                (arn("route53", "", "", f"hostedzone/{settings.hosted_zone_id}", partition_of=settings.region),),
                "route53 weighted records",
            ),
            # A record's health check is kept from Route 53, not named in the spec: any may be read.
            Statement(
                ("route53:GetHealthCheckStatus",),
                (arn("route53", "", "", "healthcheck/*", partition_of=settings.region),),
                "route53 health check status",
            ),
            # A change id is only known once submitted, so GetChange cannot be narrowed further.
            Statement(
                ("route53:GetChange",),
                (arn("route53", "", "", "change/*", partition_of=settings.region),),
                "route53 change status",
            ),
        ]

    @classmethod
    def plan_warnings(cls, settings: Settings, steps: list[tuple[int, float]]) -> list[str]:
        ttl = f"{settings.ttl}s"  # DNS TTLs are read in seconds
        return [
            f"traffic step {i} ({weight} %) bakes {format_duration(bake)}, shorter than the record TTL {ttl}: "
            "resolvers may still send clients to the old weights when its gates measure"
            for i, (weight, bake) in enumerate(steps, start=1)
            if bake < settings.ttl
        ]

    def describe(self) -> str:
        s = self.settings
        return f"route53 {s.record_name} {s.record_type} (zone {s.hosted_zone_id})"

    # -- reading ---------------------------------------------------------------------------------

    def _weighted_records(self) -> dict[str, dict[str, Any]]:
        """Record sets of our exact name and type, by SetIdentifier; a plain (not weighted) record of
        that name and type is refused: Route 53 cannot have both."""
        s = self.settings
        request: dict[str, Any] = {
            "HostedZoneId": s.hosted_zone_id,
            "StartRecordName": s.record_name,
            "StartRecordType": s.record_type,
            "MaxItems": str(PAGE_SIZE),
        }
        found: dict[str, dict[str, Any]] = {}
        while True:
            page = self.route53.list_resource_record_sets(**request)
            for rrset in page["ResourceRecordSets"]:
                if (dns_name(rrset["Name"]), rrset["Type"]) != (s.record_name, s.record_type):
                    return found  # listed in name/type order: the rest of the zone comes after ours
                if "SetIdentifier" not in rrset:
                    raise Route53ConfigError(
                        f"route53: {self.describe()} is a plain record, not a weighted pair; Route 53 refuses "
                        f"weighted records beside it: replace it with the {s.blue_identifier!r} record at weight "
                        f"100 (same answer) before a wave uses it"
                    )
                found[rrset["SetIdentifier"]] = rrset
            if not page.get("IsTruncated"):
                return found
            following = {
                "StartRecordName": page["NextRecordName"],
                "StartRecordType": page["NextRecordType"],
                "StartRecordIdentifier": page.get("NextRecordIdentifier"),
            }
            if all(request.get(key) == value for key, value in following.items()):
                raise Route53ConfigError(
                    f"route53: listing {self.describe()} did not advance past "
                    f"{page['NextRecordName']} {page['NextRecordType']}"
                )
            request.update({key: value for key, value in following.items() if value is not None})
            if following["StartRecordIdentifier"] is None:
                request.pop("StartRecordIdentifier", None)

    def get_weights(self) -> Weights:
        s = self.settings
        records = self._weighted_records()
        blue, green = records.get(s.blue_identifier), records.get(s.green_identifier)
        if blue is None and green is None:
            return Weights(blue=100, green=0)  # fresh setup: the pair is created by the first set_weights
        if blue is None or green is None:
            have, lack = (
                (s.green_identifier, s.blue_identifier) if blue is None else (s.blue_identifier, s.green_identifier)
            )
            raise Route53ConfigError(
                f"route53: {self.describe()} has the weighted record {have!r} but not {lack!r}; "
                "create the missing one or delete both before a wave uses this record"
            )
        strangers = {
            ident: r.get("Weight")
            for ident, r in records.items()
            if ident not in (s.blue_identifier, s.green_identifier) and r.get("Weight")
        }
        if strangers and not s.allow_other_weighted_records:
            raise Route53ConfigError(
                f"route53: {self.describe()} also has weighted records {strangers}: 100 % green "
                "would not be all traffic; set them to 0 or allow_other_weighted_records"
            )
        if strangers:
            log.warning(
                "route53: %s also has weighted records %s; blue and green share only the rest of the traffic",
                self.describe(),
                strangers,
            )
        blue_weight, green_weight = blue.get("Weight", 0), green.get("Weight", 0)
        if blue_weight + green_weight == 0:
            raise Route53ConfigError(
                f"route53: {self.describe()} has weight 0 on both {s.blue_identifier!r} and "
                f"{s.green_identifier!r}; Route 53 would split traffic evenly between them"
            )
        green_pct = round(100 * green_weight / (blue_weight + green_weight))
        return Weights(blue=100 - green_pct, green=green_pct)

    # -- writing ---------------------------------------------------------------------------------

    def _record(self, side: str, weight: int, existing: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self.settings
        target: Target = getattr(s, side)
        record: dict[str, Any] = {
            "Name": s.record_name,
            "Type": s.record_type,
            "SetIdentifier": getattr(s, f"{side}_identifier"),
            "Weight": weight,
        }
        if target.alias:
            record["AliasTarget"] = {
                "HostedZoneId": target.alias.hosted_zone_id,
                "DNSName": target.alias.dns_name,
                "EvaluateTargetHealth": target.alias.evaluate_target_health,
            }
        else:
            record["TTL"] = s.ttl
            record["ResourceRecords"] = [{"Value": value} for value in target.values or []]
        if existing and existing.get("HealthCheckId"):
            record["HealthCheckId"] = existing["HealthCheckId"]  # an UPSERT would drop it otherwise
        return record

    def set_weights(self, weights: Weights) -> None:
        blue, green = check_weight("blue", weights.blue), check_weight("green", weights.green)
        if blue + green == 0:
            raise ValueError("route53: blue and green weights are both 0; Route 53 would split traffic evenly")
        self._upsert(blue, green, f"slow-injection: {weights}")

    def _upsert(self, blue: int, green: int, comment: str) -> None:
        s = self.settings
        records = self._weighted_records()
        # Both records in one batch: Route 53 applies a batch all at once or not at all.
        change = self.route53.change_resource_record_sets(
            HostedZoneId=s.hosted_zone_id,
            ChangeBatch={
                "Comment": comment,
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": self._record("blue", blue, records.get(s.blue_identifier)),
                    },
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": self._record("green", green, records.get(s.green_identifier)),
                    },
                ],
            },
        )["ChangeInfo"]
        self._wait_insync(change["Id"], change["Status"])

    def attach_green(self, apply: bool) -> list[Change]:
        """The weighted pair exists (blue 100, green 0) before any weight moves: created if missing."""
        s = self.settings
        records = self._weighted_records()
        if s.blue_identifier in records and s.green_identifier in records:
            return []
        self.get_weights()  # refuses a half pair or strangers before writing anything
        change = Change(f"router {self.describe()}", "no weighted pair", "blue 100, green 0", applied=apply)
        if apply:
            self._upsert(100, 0, "slow-injection: weighted pair created, all traffic on blue")
        return [change]

    def _wait_insync(self, change_id: str, status: str) -> None:
        timeout = self.settings.wait_timeout
        deadline = self.clock() + timeout
        while status != "INSYNC":
            left = deadline - self.clock()
            if left <= 0:
                raise TimeoutError(
                    f"route53: change {change_id} for {self.describe()} still {status} after "
                    f"{format_duration(timeout)} (wait_timeout); the weights are submitted but not "
                    "yet on every Route 53 name server"
                )
            self.sleep(min(self.settings.poll_interval, left))
            status = self.route53.get_change(Id=change_id)["ChangeInfo"]["Status"]

    # -- green's readiness -----------------------------------------------------------------------

    def _health_check(self) -> Readiness:
        """Route 53 also leaves out a weighted record whose health check fails: it counts the endpoint
        healthy when more than 18 % of its checkers report success."""
        record = self._weighted_records().get(self.settings.green_identifier) or {}
        check = record.get("HealthCheckId")
        if not check:
            return Readiness("ready", "")
        observations = self.route53.get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
        reports = [str(o.get("StatusReport", {}).get("Status", "")) for o in observations]
        healthy = sum(1 for r in reports if r.startswith("Success"))
        detail = (
            f"green's record has Route 53 health check {check}: {healthy} of {len(reports)} checkers report success"
        )
        if reports and healthy / len(reports) > HEALTHY_SHARE:
            return Readiness("ready", detail)
        last = next((r for r in reports if not r.startswith("Success")), "")
        return Readiness("waiting", f"{detail}; Route 53 answers with blue meanwhile ({last[:120]})")

    def green_ready(self) -> Readiness:
        """With EvaluateTargetHealth on green's load balancer alias, Route 53 answers with blue
        instead while that load balancer counts as unhealthy (every target group with targets needs
        a healthy one; a target group without targets is unhealthy): green would get none of its
        share, and its gates would judge nothing. So green is ready only once Route 53 would count
        it healthy."""
        checked = self._health_check()
        if checked.state != "ready":
            return checked
        alias = self.settings.green.alias
        if not (alias and alias.evaluate_target_health):
            return Readiness(
                "ready",
                checked.detail or "route53 has no target health to wait for; green's health checks gate traffic",
            )
        region = elb_region(alias.dns_name)
        if region is None or self._elbv2 is None:
            return Readiness(
                "ready",
                f"green's alias {alias.dns_name} evaluates target health but names no load balancer this "
                "router can read; Route 53 skips green while that target is unhealthy",
            )
        elbv2 = self._elbv2(region)
        wanted = _bare(alias.dns_name)
        balancer = next(
            (
                lb
                for page in elbv2.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancers"]
                if _bare(lb.get("DNSName", "")) == wanted
            ),
            None,
        )
        if balancer is None:
            return Readiness("waiting", f"no load balancer in {region} has the DNS name {alias.dns_name}")
        groups = [
            group
            for page in elbv2.get_paginator("describe_target_groups").paginate(
                LoadBalancerArn=balancer["LoadBalancerArn"]
            )
            for group in page["TargetGroups"]
        ]
        unhealthy = []
        for group in groups:
            states = [
                h.get("TargetHealth", {}).get("State")
                for h in elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])[
                    "TargetHealthDescriptions"
                ]
            ]
            if "healthy" not in states:
                unhealthy.append(
                    f"{group.get('TargetGroupName')}: "
                    + (f"none healthy of {len(states)}" if states else "no registered targets")
                )
        name = balancer.get("LoadBalancerName", alias.dns_name)
        if not groups:
            return Readiness(
                "waiting", f"green's load balancer {name} has no target group: Route 53 counts it unhealthy"
            )
        if unhealthy:
            return Readiness(
                "waiting",
                f"green's load balancer {name} counts as unhealthy for Route 53 (EvaluateTargetHealth), which "
                f"would send green's share to blue: {'; '.join(unhealthy)}",
            )
        return Readiness("ready", f"green's load balancer {name}: every target group has a healthy target")
