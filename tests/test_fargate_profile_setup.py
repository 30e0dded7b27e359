"""Green's Fargate profile set up in the preparation phase through the Fargate-profiles port (the EKS
driver, the provider's EksHook), against moto in server mode: created, left alone when it matches,
refused when it differs; the ACTIVE gate's reading."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import kinds
from include.slow_injection.drivers.aws_eks import profile_differences
from include.slow_injection.tasks.fargate_setup import EnsureFargateProfile
from tests.support.aws import ACCOUNT, CONNECTION_ID, REGION, MotoServer

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fargate-pods"


def spec_profile(**changes: Any) -> dict[str, Any]:
    return {
        "cluster": "prod",
        "name": "shop-green",
        "pod_execution_role_arn": ROLE,
        "subnets": ["subnet-0a1", "subnet-0b2"],
        "tags": {"team": "shop"},
        "selectors": [{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}],
        "aws_connection": CONNECTION_ID,
        "region": REGION,
        "timeout": 60.0,
        **changes,
    }


@pytest.fixture
def eks(aws: MotoServer) -> Any:
    client = aws.client("eks")
    client.create_cluster(
        name="prod", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["subnet-0a1"]}
    )
    return client


def ensure(profile: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    task = EnsureFargateProfile(task_id="ensure_fargate_profile", wave_id="t", profile=profile)
    return task.execute({"params": {"dry_run": dry_run}})


def test_missing_profile_is_created_then_left_alone(eks: Any) -> None:
    assert ensure(spec_profile())["change"] == "created"
    created = eks.describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")["fargateProfile"]
    assert created["podExecutionRoleArn"] == ROLE and sorted(created["subnets"]) == ["subnet-0a1", "subnet-0b2"]
    assert created["selectors"] == [{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}]
    assert created["tags"] == {"team": "shop"}
    again = ensure(spec_profile(selectors=[{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}]))
    assert again["change"] == "none" and again["status"] == "ACTIVE"
    assert len(eks.list_fargate_profiles(clusterName="prod")["fargateProfileNames"]) == 1


def test_a_profile_that_differs_is_a_clear_error_not_a_change(eks: Any) -> None:
    ensure(spec_profile())
    with pytest.raises(AirflowFailException) as err:
        ensure(spec_profile(subnets=["subnet-0c3"], selectors=[{"namespace": "shop-fargate"}]))
    message = str(err.value)
    assert message.startswith(
        "environments.green.fargate_profile: EKS cluster prod, Fargate profile shop-green exists and differs"
    )
    assert "subnets:" in message and "selectors:" in message and "pod_execution_role_arn" not in message
    profile = eks.describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")["fargateProfile"]
    assert sorted(profile["subnets"]) == ["subnet-0a1", "subnet-0b2"]


def test_dry_run_creates_nothing(eks: Any) -> None:
    assert ensure(spec_profile(), dry_run=True) == {"profile": "shop-green", "change": "would create", "dry_run": True}
    assert eks.list_fargate_profiles(clusterName="prod")["fargateProfileNames"] == []


def test_differences_compare_selectors_as_sets_and_ignore_tags() -> None:
    existing = {
        "podExecutionRoleArn": ROLE,
        "subnets": ["subnet-0b2", "subnet-0a1"],
        "tags": {"other": "x"},
        "selectors": [{"namespace": "b"}, {"namespace": "a", "labels": {"k": "v"}}],
    }
    profile = spec_profile(selectors=[{"namespace": "a", "labels": {"k": "v"}}, {"namespace": "b", "labels": {}}])
    assert profile_differences(existing, profile) == []
    changed = spec_profile(selectors=[{"namespace": "a", "labels": {"k": "w"}}, {"namespace": "b"}])
    assert profile_differences(existing, changed) == [
        "selectors: EKS has a {'k': 'v'}; b, the spec wants a {'k': 'w'}; b"
    ]


def test_the_active_gate_waits_for_a_missing_profile_and_passes_once_it_is_active(eks: Any) -> None:
    gate = {"cluster": "prod", "profile": "shop-green", "aws_connection": CONNECTION_ID, "region": REGION}
    wait = kinds.measured("fargate_profile")

    def reading() -> Any:
        return wait.read(wait.connect(gate, None), gate, None, 0.0)

    missing = reading()
    assert missing.state == "waiting" and "does not exist" in missing.detail
    ensure(spec_profile())
    assert reading().state == "ready"  # moto: ACTIVE at once
