"""Route 53 router against moto in server mode, reached through the Airflow AWS connection's endpoint_url.

moto answers every change INSYNC at once; the PENDING paths are shown by rewriting moto's answers on
the driver's own client (botocore's after-call event), the calls still going to moto.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from include.slow_injection import registry
from include.slow_injection.drivers import aws_route53
from include.slow_injection.drivers.aws_route53 import Route53ConfigError, Route53Router
from include.slow_injection.phases.plan_text import plan_lines, warnings
from include.slow_injection.ports import Weights
from include.slow_injection.spec import load_wave
from include.slow_injection.spec.loader import driver_settings_errors
from include.slow_injection.spec.models import DriverRef
from tests.support.aws import CONNECTION_ID, ApiCalls, MotoServer, load_balancer_in_new_vpc
from tests.support.waves import small_wave, write

NAME = "shop.example.com."
OURS = {"blue", "green"}


@dataclass
class Zone:
    route53: Any
    zone_id: str

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "route53",
            "connection": CONNECTION_ID,
            "hosted_zone_id": self.zone_id,
            "record_name": NAME,
            "record_type": "A",
            "poll_interval": 0.01,
            "blue": {"values": ["192.0.2.10"]},
            "green": {"values": ["192.0.2.20", "192.0.2.21"]},
            **extra,
        }

    def router(self, **extra: Any) -> Route53Router:
        return registry.build("router", self.settings(**extra), service="web")

    def all_records(self) -> list[dict[str, Any]]:
        return self.route53.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]

    def ours(self) -> dict[str, dict[str, Any]]:
        return {
            r["SetIdentifier"]: r
            for r in self.all_records()
            if r["Name"] == NAME and r["Type"] == "A" and r.get("SetIdentifier") in OURS
        }

    def others(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.all_records()
            if not (r["Name"] == NAME and r["Type"] == "A" and r.get("SetIdentifier") in OURS)
        ]

    def put(self, record: dict[str, Any]) -> None:
        self.route53.change_resource_record_sets(
            HostedZoneId=self.zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
        )


def weighted(name: str, ident: str, weight: int, value: str, rtype: str = "A") -> dict[str, Any]:
    return {
        "Name": name,
        "Type": rtype,
        "SetIdentifier": ident,
        "Weight": weight,
        "TTL": 300,
        "ResourceRecords": [{"Value": value}],
    }


@pytest.fixture
def zone(aws: MotoServer) -> Zone:
    route53 = aws.client("route53")
    zone_id = route53.create_hosted_zone(Name="example.com.", CallerReference="t")["HostedZone"]["Id"]
    z = Zone(route53, zone_id.removeprefix("/hostedzone/"))
    # Neighbours a careless driver would touch: another set identifier of the same name and type, the
    # same name with another type, and a name listed right after ours that reuses our identifiers.
    z.put(weighted(NAME, "canary", 0, "192.0.2.99"))
    z.put({"Name": NAME, "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": '"owner=shop"'}]})
    z.put(weighted("a.shop.example.com.", "blue", 7, "192.0.2.70"))
    z.put(weighted("a.shop.example.com.", "green", 0, "192.0.2.71"))
    z.put({"Name": "api.example.com.", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.50"}]})
    return z


def test_steps_up_to_100_and_rolls_back_leaving_every_other_record_alone(zone: Zone) -> None:
    before = zone.others()
    router = zone.router()
    assert router.get_weights() == Weights(100, 0)  # fresh: the pair does not exist yet
    for green in (0, 5, 25, 50, 100, 0):
        router.set_weights(Weights.green_at(green))
        assert router.get_weights() == Weights.green_at(green)
        raw = zone.ours()
        assert {ident: r["Weight"] for ident, r in raw.items()} == {"blue": 100 - green, "green": green}
        assert [v["Value"] for v in raw["green"]["ResourceRecords"]] == ["192.0.2.20", "192.0.2.21"]
        assert raw["blue"]["TTL"] == 60
    assert zone.others() == before


def test_weights_edited_by_hand_read_back_as_percent(zone: Zone) -> None:
    zone.put(weighted(NAME, "blue", 3, "192.0.2.10"))
    zone.put(weighted(NAME, "green", 1, "192.0.2.20"))
    assert zone.router().get_weights() == Weights(75, 25)


def test_both_records_change_in_one_batch(zone: Zone, api_calls: ApiCalls) -> None:
    zone.router().set_weights(Weights.green_at(25))
    changes = [c for c in api_calls.calls if c.action == "route53:ChangeResourceRecordSets"]
    assert len(changes) == 1
    batch = changes[0].params["ChangeBatch"]["Changes"]
    assert [(c["Action"], c["ResourceRecordSet"]["SetIdentifier"]) for c in batch] == [
        ("UPSERT", "blue"),
        ("UPSERT", "green"),
    ]


def test_alias_targets_are_written_without_ttl(zone: Zone, api_calls: ApiCalls) -> None:
    alias = {
        "dns_name": "green-alb-1.eu-west-1.elb.amazonaws.com.",
        "hosted_zone_id": "Z32O12XQLNTSW2",
        "evaluate_target_health": True,
    }
    router = zone.router(green={"alias": alias})
    router.set_weights(Weights.green_at(5))
    green = zone.ours()["green"]
    assert green["AliasTarget"]["DNSName"] == alias["dns_name"] and green["Weight"] == 5
    # Route 53 refuses a TTL on an alias record (moto would list one anyway: 0), so check what was sent.
    change = next(c for c in api_calls.calls if c.action == "route53:ChangeResourceRecordSets")
    sent = change.params["ChangeBatch"]["Changes"][1]["ResourceRecordSet"]
    assert sent["AliasTarget"]["EvaluateTargetHealth"] is True
    assert "TTL" not in sent and "ResourceRecords" not in sent
    assert router.get_weights() == Weights(95, 5)
    ready = router.green_ready()  # no such load balancer: Route 53 could not count it healthy
    assert ready.state == "waiting" and "no load balancer in eu-west-1 has the DNS name" in ready.detail
    assert zone.router().green_ready().state == "ready"  # values records: nothing for Route 53 to evaluate


def green_balancer(aws: MotoServer) -> tuple[Any, str, str, str]:
    """An ALB for green (one IP target group on its listener, a second through a rule, both empty):
    the elbv2 client, its DNS name and both target groups."""
    elbv2 = aws.client("elbv2")
    lb, groups, _, _ = load_balancer_in_new_vpc(aws, "green", "10.1.0.0/16", ("web-green", "web-green-api"))
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups[0]}],
    )["Listeners"][0]
    elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=5,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": groups[1]}],
    )
    return elbv2, lb["DNSName"], groups[0], groups[1]


def test_green_is_ready_only_when_route53_would_count_its_load_balancer_healthy(
    aws: MotoServer, zone: Zone, api_calls: ApiCalls
) -> None:
    elbv2, dns, web, api = green_balancer(aws)
    alias = {"dns_name": f"dualstack.{dns}.", "hosted_zone_id": "Z32O12XQLNTSW2", "evaluate_target_health": True}
    router = zone.router(green={"alias": alias})
    ready = router.green_ready()
    # a target group without targets is unhealthy to Route 53: green's share would go to blue unseen
    assert ready.state == "waiting", ready
    assert "web-green: no registered targets; web-green-api: no registered targets" in ready.detail
    elbv2.register_targets(TargetGroupArn=web, Targets=[{"Id": "10.1.0.10", "Port": 8080}])
    ready = router.green_ready()
    assert ready.state == "waiting" and "web-green:" not in ready.detail  # every group needs a healthy target
    elbv2.register_targets(TargetGroupArn=api, Targets=[{"Id": "10.1.1.10", "Port": 8080}])
    assert router.green_ready().state == "ready"  # moto reports IP targets healthy
    # without EvaluateTargetHealth Route 53 answers with green whatever its health: nothing to wait for
    assert zone.router(green={"alias": {**alias, "evaluate_target_health": False}}).green_ready().state == "ready"
    # every call it made is in its statements
    settings = Route53Router.Settings.model_validate(
        {k: v for k, v in zone.settings(green={"alias": alias}).items() if k not in ("type", "connection")}
    )
    allowed = {a for st in Route53Router.iam_statements(settings) for a in st.actions}
    assert {c.action for c in api_calls.calls if c.action.startswith("elasticloadbalancing:")} <= allowed
    assert "elasticloadbalancing:DescribeTargetHealth" in allowed


def test_weights_outside_route53_range_are_refused_before_any_call(zone: Zone, api_calls: ApiCalls) -> None:
    router = zone.router()
    for weights in (Weights(blue=-1, green=101), Weights(blue=0, green=256), Weights(blue=0, green=0)):
        with pytest.raises(ValueError, match="weight"):
            router.set_weights(weights)
    assert api_calls.calls == []
    router.set_weights(Weights(blue=0, green=255))  # the top of Route 53's range is allowed
    assert router.get_weights() == Weights(0, 100)


def test_missing_connection_is_a_clear_error(zone: Zone) -> None:
    with pytest.raises(ValueError, match="needs `connection`"):
        registry.build("router", {**zone.settings(), "connection": None})


@pytest.mark.parametrize("present", ["blue", "green"])
def test_half_configured_pair_is_a_clear_error(zone: Zone, present: str) -> None:
    zone.put(weighted(NAME, present, 100, "192.0.2.10"))
    missing = ({"blue", "green"} - {present}).pop()
    with pytest.raises(Route53ConfigError, match=f"has the weighted record '{present}' but not '{missing}'") as err:
        zone.router().get_weights()
    assert NAME in str(err.value) and zone.zone_id in str(err.value)


def test_both_weights_zero_is_a_clear_error(zone: Zone) -> None:
    zone.put(weighted(NAME, "blue", 0, "192.0.2.10"))
    zone.put(weighted(NAME, "green", 0, "192.0.2.20"))
    with pytest.raises(Route53ConfigError, match=f"weight 0 on both .*{zone.zone_id}|{zone.zone_id}.*weight 0 on both"):
        zone.router().get_weights()


def test_a_stranger_taking_traffic_is_refused_unless_allowed(zone: Zone, caplog: pytest.LogCaptureFixture) -> None:
    router = zone.router()
    router.set_weights(Weights.green_at(50))
    zone.put(weighted(NAME, "canary", 10, "192.0.2.99"))
    with pytest.raises(Route53ConfigError, match="also has weighted records {'canary': 10}"):
        router.get_weights()
    allowing = zone.router(allow_other_weighted_records=True)
    assert allowing.get_weights() == Weights(50, 50)
    assert "'canary': 10" in caplog.text


def test_attach_creates_the_pair_once_and_a_plain_record_is_refused(zone: Zone) -> None:
    router = zone.router()
    assert [str(c) for c in router.attach_green(apply=True)] == [
        f"router {router.describe()}: no weighted pair → blue 100, green 0"
    ]
    assert zone.ours()["blue"]["Weight"] == 100 and zone.ours()["green"]["Weight"] == 0
    assert router.attach_green(apply=True) == []
    plain = zone.router(record_name="plain.example.com.")
    zone.put({"Name": "plain.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.7"}]})
    with pytest.raises(Route53ConfigError, match="is a plain record, not a weighted pair"):
        plain.attach_green(apply=True)


def test_an_existing_health_check_id_is_kept_on_upsert(zone: Zone) -> None:
    router = zone.router()
    router.set_weights(Weights.green_at(5))
    record = zone.ours()["green"]
    zone.put({**record, "HealthCheckId": "abcdef01-2345-6789-abcd-ef0123456789"})
    router.set_weights(Weights.green_at(25))
    assert zone.ours()["green"].get("HealthCheckId") == "abcdef01-2345-6789-abcd-ef0123456789"
    assert zone.ours()["green"]["Weight"] == 25


def test_green_waits_while_its_records_health_check_fails(zone: Zone) -> None:
    check = zone.route53.create_health_check(
        CallerReference="green",
        HealthCheckConfig={"IPAddress": "192.0.2.20", "Port": 80, "Type": "HTTP", "ResourcePath": "/healthz"},
    )["HealthCheck"]["Id"]
    router = zone.router()
    router.set_weights(Weights.green_at(0))
    zone.put({**zone.ours()["green"], "HealthCheckId": check})
    ready = router.green_ready()  # moto's checkers all report success
    assert ready.state == "ready" and f"health check {check}: 1 of 1 checkers report success" in ready.detail
    failing = "Failure: HTTP Status Code 503, Service Unavailable"

    def reports(parsed: dict[str, Any], **_: Any) -> None:
        observation = parsed["HealthCheckObservations"][0]
        parsed["HealthCheckObservations"] = [
            {**observation, "StatusReport": {**observation["StatusReport"], "Status": status}}
            for status in [failing] * 5 + ["Success: HTTP Status Code 200, OK"]
        ]

    router.route53.meta.events.register("after-call.route53.GetHealthCheckStatus", reports)
    waiting = router.green_ready()  # 1 of 6 (17 %) is not more than 18 %: Route 53 leaves green out
    assert waiting.state == "waiting" and "1 of 6 checkers report success" in waiting.detail
    assert failing in waiting.detail
    settings = Route53Router.Settings.model_validate(
        {k: v for k, v in zone.settings().items() if k not in ("type", "connection")}
    )
    assert any("route53:GetHealthCheckStatus" in st.actions for st in Route53Router.iam_statements(settings))


def test_set_weights_waits_for_insync(zone: Zone, api_calls: ApiCalls) -> None:
    router = zone.router(poll_interval=2)
    statuses = iter(["PENDING", "PENDING", "PENDING"])  # ChangeResourceRecordSets, then two GetChange

    def status_from_script(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChangeInfo"]["Status"] = next(statuses, "INSYNC")

    for operation in ("ChangeResourceRecordSets", "GetChange"):
        router.route53.meta.events.register(f"after-call.route53.{operation}", status_from_script)
    slept: list[float] = []
    router.sleep = slept.append
    router.set_weights(Weights.green_at(5))
    assert [c.action for c in api_calls.calls].count("route53:GetChange") == 3
    assert slept == [2, 2, 2]


def test_a_change_never_insync_times_out_naming_it(zone: Zone) -> None:
    router = zone.router(wait_timeout=10, poll_interval=3)

    def always_pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChangeInfo"]["Status"] = "PENDING"
        parsed["ChangeInfo"]["Id"] = "/change/C0000STUCK"

    for operation in ("ChangeResourceRecordSets", "GetChange"):
        router.route53.meta.events.register(f"after-call.route53.{operation}", always_pending)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    router.sleep, router.clock = sleep, lambda: now[0]
    with pytest.raises(TimeoutError, match="change /change/C0000STUCK .* still PENDING after 10s \\(wait_timeout\\)"):
        router.set_weights(Weights.green_at(5))
    assert slept == [3, 3, 3, 1]


def _page(records: list[dict[str, Any]], following: tuple[str, str, str] | None) -> dict[str, Any]:
    page: dict[str, Any] = {"ResourceRecordSets": records, "IsTruncated": following is not None, "MaxItems": "300"}
    if following:
        page.update(NextRecordName=following[0], NextRecordType=following[1], NextRecordIdentifier=following[2])
    return page


def test_pagination_follows_record_identifiers_and_stops_past_the_name() -> None:
    # moto ignores StartRecordIdentifier, so AWS's own page shape is replayed with botocore's Stubber.
    client = boto3.client("route53", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    settings = Route53Router.Settings.model_validate(
        {k: v for k, v in Zone(None, "Z1").settings().items() if k not in ("type", "connection")}
    )
    first = {"HostedZoneId": "Z1", "StartRecordName": NAME, "StartRecordType": "A", "MaxItems": "300"}
    with Stubber(client) as stub:
        stub.add_response(
            "list_resource_record_sets", _page([weighted(NAME, "blue", 75, "192.0.2.10")], (NAME, "A", "canary")), first
        )
        stub.add_response(
            "list_resource_record_sets",
            _page([weighted(NAME, "canary", 0, "192.0.2.99")], (NAME, "A", "green")),
            {**first, "StartRecordIdentifier": "canary"},
        )
        stub.add_response(
            "list_resource_record_sets",
            _page(
                [
                    weighted(NAME, "green", 25, "192.0.2.20"),
                    weighted("a.shop.example.com.", "green", 100, "192.0.2.71"),
                ],
                ("b.shop.example.com.", "A", "blue"),
            ),
            {**first, "StartRecordIdentifier": "green"},
        )
        assert Route53Router(client, settings).get_weights() == Weights(75, 25)
        stub.assert_no_pending_responses()  # and no fourth page was asked for


def test_a_listing_that_does_not_advance_is_an_error_not_a_loop(zone: Zone, monkeypatch: pytest.MonkeyPatch) -> None:
    router = zone.router()
    router.set_weights(Weights.green_at(5))
    monkeypatch.setattr(aws_route53, "PAGE_SIZE", 1)  # moto has no StartRecordIdentifier: page 2 = page 1
    with pytest.raises(Route53ConfigError, match="did not advance"):
        router.get_weights()


def _ref(zone_settings: dict[str, Any]) -> DriverRef:
    return DriverRef.model_validate(zone_settings)


@pytest.mark.parametrize(
    ("extra", "path", "reason"),
    [
        (
            {"green": {"values": ["192.0.2.1"], "alias": {"dns_name": "x.", "hosted_zone_id": "Z2"}}},
            "green",
            "exactly one of `values`",
        ),
        ({"blue": {"values": ["2001:db8::1"]}}, "blue.values", "not an IPv4 address"),
        (
            {"record_type": "CNAME", "blue": {"values": ["a.example.net.", "b.example.net."]}},
            "blue.values",
            "exactly one value",
        ),
        ({"green_identifier": "blue"}, "green_identifier", "must differ"),
        ({"hosted_zone_id": "not a zone"}, "hosted_zone_id", "hosted zone id"),
        ({"ttl": "60"}, "ttl", ""),
        ({"wait_timeout": 0}, "wait_timeout", ""),
        ({"weight": 5}, "weight", "unknown key"),
    ],
)
def test_settings_errors_name_the_setting(extra: dict[str, Any], path: str, reason: str) -> None:
    errors = driver_settings_errors("router", _ref(Zone(None, "Z1").settings(**extra)))
    assert errors and errors[0][0] == path and reason in errors[0][1], errors


def test_settings_accept_durations_and_normalise_names() -> None:
    settings = Route53Router.Settings.model_validate(
        {
            "hosted_zone_id": "/hostedzone/Z1",
            "record_name": "Shop.Example.com",
            "record_type": "A",
            "blue": {"values": ["192.0.2.1"]},
            "green": {"values": ["192.0.2.2"]},
            "wait_timeout": "5m",
        }
    )
    assert (settings.hosted_zone_id, settings.record_name, settings.wait_timeout) == ("Z1", NAME, 300.0)


def test_every_call_the_router_makes_is_in_its_iam_statements(zone: Zone, api_calls: ApiCalls) -> None:
    router = zone.router()
    statuses = iter(["PENDING"])
    router.route53.meta.events.register(
        "after-call.route53.ChangeResourceRecordSets",
        lambda parsed, **_: parsed["ChangeInfo"].update(Status=next(statuses, "INSYNC")),
    )
    router.get_weights()
    router.set_weights(Weights.green_at(25))
    router.get_weights()
    router.green_ready()
    settings = Route53Router.Settings.model_validate(
        {k: v for k, v in zone.settings().items() if k not in ("type", "connection")}
    )
    allowed = {(a, r) for st in Route53Router.iam_statements(settings) for a in st.actions for r in st.resources}
    for call in api_calls.calls:
        resource = (
            f"arn:aws:route53:::hostedzone/{call.params['HostedZoneId']}"
            if "HostedZoneId" in call.params
            else "arn:aws:route53:::change/*"
        )
        assert (call.action, resource) in allowed, call
    assert {c.action for c in api_calls.calls} == {
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
    }


# -- the plan warns when a step's bake is shorter than the record TTL ---------------------------


def _wave_with_route53(tmp_path: Path, steps: list[dict[str, Any]], **router: Any) -> Any:
    data = small_wave("w", wave_id="r53")
    web = data["services"][1]
    web["router"] = Zone(None, "Z1").settings(**router)
    web["traffic_steps"] = steps
    return load_wave(write(tmp_path, data))


def test_plan_warns_of_steps_baking_less_than_the_ttl(tmp_path: Path, api_calls: ApiCalls) -> None:
    wave = _wave_with_route53(
        tmp_path, [{"weight": 5, "bake": "2m"}, {"weight": 25, "bake": "30s"}, {"weight": 100, "bake": "5m"}]
    )
    ttl_warnings = [w for w in warnings(wave) if "TTL" in w]
    assert ttl_warnings == [
        "web: traffic step 2 (25 %) bakes 30s, shorter than the record TTL 60s: resolvers may "
        "still send clients to the old weights when its gates measure"
    ]
    assert f"warning: {ttl_warnings[0]}" in plan_lines(wave)
    assert api_calls.calls == []  # a plan never calls AWS


def test_plan_is_quiet_when_every_bake_covers_the_ttl(tmp_path: Path) -> None:
    wave = _wave_with_route53(tmp_path, [{"weight": 25, "bake": "60s"}, {"weight": 100, "bake": "5m"}])
    assert not [w for w in warnings(wave) if "TTL" in w]
    shorter_ttl = _wave_with_route53(tmp_path, [{"weight": 25, "bake": "30s"}, {"weight": 100, "bake": "5m"}], ttl=30)
    assert not [w for w in warnings(shorter_ttl) if "TTL" in w]
    longer_ttl = _wave_with_route53(tmp_path, [{"weight": 25, "bake": "30s"}, {"weight": 100, "bake": "5m"}], ttl=600)
    assert len([w for w in warnings(longer_ttl) if "TTL 600s" in w]) == 2
