"""Thin AwsBaseHook subclasses for the AWS APIs the amazon provider has no hook for. They inherit
the provider's connection handling (credentials, region, endpoint_url, assume-role) unchanged."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


class ElbV2Hook(AwsBaseHook):
    """Application Load Balancers (elbv2): listeners, rules, target groups."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "elbv2"
        super().__init__(*args, **kwargs)


class Route53Hook(AwsBaseHook):
    """Route 53 record sets and change status (a global service: region is only used for signing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "route53"
        super().__init__(*args, **kwargs)


class CloudWatchHook(AwsBaseHook):
    """CloudWatch metrics and alarms (GetMetricData, DescribeAlarms)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "cloudwatch"
        super().__init__(*args, **kwargs)
