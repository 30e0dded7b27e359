"""`slow-injection iam SPEC`: the IAM policy a wave's AWS drivers need, narrowed to the spec's ARNs,
and the Kubernetes RBAC for its platform driver; the example AWS spec validates and plans."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import markdown
import pytest
import yaml

from include.slow_injection.permissions import iam_policy
from include.slow_injection.spec import load_wave
from tests.support.waves import small_wave, write

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "aws" / "shop-fargate.yaml"
CLI = [sys.executable, "-m", "include.slow_injection.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, cwd=ROOT)


def allowed(policy: dict, action: str) -> set[str]:
    return {r for st in policy["Statement"] if action in st["Action"] for r in st["Resource"]}


def test_the_example_spec_s_policy_names_its_own_arns() -> None:
    policy = iam_policy(load_wave(EXAMPLE))
    # The weights live on an HTTPRoute (the AWS Load Balancer Controller writes the ALB): no ELBv2 writes at all
    assert not any(a.startswith("elasticloadbalancing:") for st in policy["Statement"] for a in st["Action"])
    assert allowed(policy, "sns:Publish") == {"arn:aws:sns:eu-west-1:123456789012:shop-migrations"}
    assert allowed(policy, "iam:PassRole") == {"arn:aws:iam::123456789012:role/shop-fargate-pods"}
    assert "arn:aws:eks:eu-west-1:*:fargateprofile/shop-prod/shop-green/*" in allowed(
        policy, "eks:CreateFargateProfile"
    )
    assert allowed(policy, "cloudwatch:GetMetricData") == {"*"}  # no resource-level permission exists
    sids = [st["Sid"] for st in policy["Statement"]]
    assert len(sids) == len(set(sids))
    assert not any(a.endswith(":*") or a == "*" for st in policy["Statement"] for a in st["Action"])


def test_cli_prints_json_policy_and_rbac_yaml() -> None:
    only_iam = cli("iam", str(EXAMPLE), "--only", "iam")
    assert only_iam.returncode == 0, only_iam.stderr
    assert json.loads(only_iam.stdout)["Version"] == "2012-10-17"
    only_rbac = cli("iam", str(EXAMPLE), "--only", "rbac")
    docs = list(yaml.safe_load_all(only_rbac.stdout))
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [
        ("Role", "shop"),
        ("Role", "shop-fargate"),
        ("ClusterRole", None),
        ("Role", "shop"),  # the gateway_api router: the HTTPRoute in shop
        ("Role", "shop-fargate"),  # green's Service, endpoints and the ReferenceGrant in shop-fargate
    ]
    both = cli("iam", str(EXAMPLE))
    assert both.returncode == 0 and '"Statement"' in both.stdout and "kind: Role" in both.stdout


def test_a_wave_without_aws_needs_no_policy_and_a_broken_spec_is_exit_1(tmp_path: Path) -> None:
    spec = write(tmp_path, small_wave("w"))
    out = cli("iam", str(spec))
    assert out.returncode == 0 and out.stdout.startswith("# no AWS calls")
    broken = small_wave("w", "broken")
    broken["services"][1]["router"] = {"type": "alb", "connection": "aws", "listener_arn": "nope"}
    result = cli("iam", str(write(tmp_path, broken)))
    assert result.returncode == 1 and "services[1].router.listener_arn" in result.stderr


def test_the_example_spec_validates_and_plans_with_fargate_setup_first() -> None:
    assert cli("validate", str(EXAMPLE)).returncode == 0
    plan = cli("plan", str(EXAMPLE)).stdout.splitlines()
    assert plan[4].strip().startswith("1. create Fargate profile shop-green on EKS cluster shop-prod")
    assert any("wait: green ready behind the gateway_api router" in line for line in plan)


def test_the_docs_show_the_example_spec_as_it_is() -> None:
    page = (ROOT / "docs" / "aws-eks.md").read_text(encoding="utf-8")
    complete_wave = page.split("## A complete wave", 1)[1].split("\n## ", 1)[0]
    assert '--8<-- "examples/aws/shop-fargate.yaml"' in complete_wave  # included whole by the docs build
    rendered = markdown.markdown(
        complete_wave,
        extensions=["pymdownx.snippets", "pymdownx.superfences"],
        extension_configs={"pymdownx.snippets": {"base_path": [str(ROOT)], "check_paths": True}},
    )
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))  # the code block's text, highlighting removed
    assert EXAMPLE.read_text(encoding="utf-8") in shown


def test_arns_follow_the_partition_of_their_region() -> None:
    from include.slow_injection.aws.iam import arn, partition

    assert [partition(r) for r in ("eu-west-1", "cn-north-1", "cn-northwest-1", "us-gov-west-1", None, "*")] == [
        "aws",
        "aws-cn",
        "aws-cn",
        "aws-us-gov",
        "aws",
        "aws",
    ]
    assert arn("eks", "cn-north-1", "*", "cluster/shop") == "arn:aws-cn:eks:cn-north-1:*:cluster/shop"
    assert arn("eks", None, "*", "cluster/shop") == "arn:aws:eks:*:*:cluster/shop"
    # Route 53 is global: no region in its ARNs, the partition of the region its client signs for
    assert arn("route53", "", "", "change/*", partition_of="us-gov-west-1") == "arn:aws-us-gov:route53:::change/*"


@pytest.mark.parametrize(("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_a_wave_outside_the_aws_partition_gets_a_policy_in_its_own(tmp_path: Path, region: str, partition: str) -> None:
    text = EXAMPLE.read_text().replace("eu-west-1", region).replace("arn:aws:", f"arn:{partition}:")
    # an alarm source without a region (the connection's): its ARNs take the partition the wave names
    text = text.replace(
        "source: {type: cloudwatch_alarm, connection: aws_shop, region: " + region + ", insufficient_data: no_data}",
        "source: {type: cloudwatch_alarm, connection: aws_shop, alarm_types: [MetricAlarm]}",
    )
    assert "insufficient_data" not in text
    spec = tmp_path / "shop-fargate.yaml"
    spec.write_text(text)
    resources = [r for st in iam_policy(load_wave(spec))["Statement"] for r in st["Resource"] if r != "*"]
    assert resources and all(r.startswith(f"arn:{partition}:") for r in resources), resources
    assert f"arn:{partition}:cloudwatch:*:*:alarm:shop-web-green-5xx" in resources
    assert f"arn:{partition}:eks:{region}:*:fargateprofile/shop-prod/shop-green/*" in resources
