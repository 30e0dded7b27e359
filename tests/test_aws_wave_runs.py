"""Whole waves through Airflow (dag.test) on AWS drivers, against moto in server mode: green's Fargate
profile set up, ALB weights stepped, CloudWatch metric and alarm gates, SNS notices read back from an
SQS subscription; one wave promotes, one rolls back on a CloudWatch breach. Every AWS call the run
makes is checked against the policy `slow-injection iam` prints for the wave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.permissions import iam_policy
from include.slow_injection.spec import load_wave
from tests.support.aws import Alb, ApiCalls, uncovered_calls
from tests.support.aws_waves import aws_wave, green_error_percent, notices
from tests.support.waves import run_wave, write

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def run(tmp_path: Path, setup: dict[str, Any], alb: Alb) -> tuple[str, dict[str, Any], dict[str, Any]]:
    data = aws_wave(setup["world"].path.stem, alb, setup["topic"])
    state, tis = run_wave(tmp_path, setup["world"], data)
    return state, tis, data


def test_an_aws_wave_promotes_on_quiet_cloudwatch(tmp_path: Path, aws_world, alb: Alb, api_calls: ApiCalls) -> None:
    green_error_percent(aws_world["cloudwatch"], 0.2)
    state, tis, data = run(tmp_path, aws_world, alb)
    assert state == "success", {k: v for k, v in tis.items() if v != "success"}
    assert alb.forward_of(alb.default_actions()) == {alb.blue: 0, alb.green: 100}
    assert tis["preparation.ensure_fargate_profile"] == "success"
    assert tis["validation.web.wait_green_targets"] == "success"
    profile = (
        aws_world["server"].client("eks").describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")
    )
    assert profile["fargateProfile"]["status"] == "ACTIVE"
    sent = notices(aws_world["sqs"], aws_world["queue"])
    events = [n["event"] for n in sent]
    assert events[0] == "wave_started" and events[-1] == "wave_completed"
    others = [e for e in events if e != "phase_completed"]
    assert others == ["wave_started", "wave_completed"]  # one notice per event, no gate failure
    assert [n["subject"].rsplit(": ", 1)[-1] for n in sent if n["event"] == "phase_completed"] == [
        f"{phase} completed"
        for phase in ("preparation", "validation", "gradual_transition", "full_transition", "release_monitoring")
    ]
    assert sent[-1]["subject"] == "[slow-injection] wave aws completed: all traffic on green"
    denied = uncovered_calls(iam_policy(load_wave(write(tmp_path, data))), api_calls.calls)
    assert denied == []
    assert {
        "eks:CreateFargateProfile",
        "elasticloadbalancing:ModifyListener",
        "cloudwatch:GetMetricData",
        "cloudwatch:DescribeAlarms",
        "sns:Publish",
    } <= api_calls.actions()


def test_an_aws_wave_rolls_back_on_a_cloudwatch_breach(
    tmp_path: Path, aws_world, alb: Alb, api_calls: ApiCalls
) -> None:
    green_error_percent(aws_world["cloudwatch"], 7.5)
    state, tis, data = run(tmp_path, aws_world, alb)
    assert state == "failed"
    assert alb.forward_of(alb.default_actions()) == {alb.blue: 100, alb.green: 0}
    assert tis["gradual_transition.web.step1_25pct.gate_green-5xx"] == "failed"
    assert tis["gradual_transition.web.step2_100pct.set_traffic"] == "skipped"
    assert tis["rollback.traffic_to_blue"] == "success"
    sent = notices(aws_world["sqs"], aws_world["queue"])
    events = [n["event"] for n in sent]
    assert [e for e in events if e != "phase_completed"] == [
        "wave_started",
        "gate_failed",
        "rollback_started",
        "rollback_finished",
    ]
    failed = next(n for n in sent if n["event"] == "gate_failed")
    assert "green-5xx [fail]" in failed["text"] and "7.5" in failed["text"]
    assert "->" in failed["subject"] and "rollback" in failed["subject"]
    assert uncovered_calls(iam_policy(load_wave(write(tmp_path, data))), api_calls.calls) == []
