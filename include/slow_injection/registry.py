"""Driver registry: a spec's `type` names a driver class, imported only when first needed.

Adding a driver is one module plus one line here; phase builders never change. Driver classes
declare `port` (which registry kind they serve), a pydantic `Settings` model for their spec keys,
and `from_spec(settings, connection_id, **context)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from include.slow_injection import ports

KINDS = (
    "router",
    "metric_source",
    "health_check",
    "platform",
    "notifier",
    "data_sync",
    "data_replication",
    "fargate_profiles",
)

_BUILTIN: dict[str, dict[str, str]] = {
    "router": {
        "alb": "include.slow_injection.drivers.aws_alb:AlbRouter",
        "alb_ingress": "include.slow_injection.drivers.k8s_ingress:AlbIngressRouter",
        "gateway_api": "include.slow_injection.drivers.gateway_api:GatewayApiRouter",
        "haproxy": "include.slow_injection.drivers.haproxy:HAProxyRouter",
        "route53": "include.slow_injection.drivers.aws_route53:Route53Router",
        "simulated": "include.slow_injection.drivers.simulated:SimulatedRouter",
    },
    "metric_source": {
        "cloudwatch": "include.slow_injection.drivers.aws_cloudwatch:CloudWatchMetrics",
        "cloudwatch_alarm": "include.slow_injection.drivers.aws_cloudwatch:CloudWatchAlarms",
        "prometheus": "include.slow_injection.drivers.prometheus:PrometheusSource",
        "simulated": "include.slow_injection.drivers.simulated:SimulatedMetricSource",
    },
    "health_check": {
        "dms_task": "include.slow_injection.drivers.aws_dms:DmsTaskHealth",
        "http": "include.slow_injection.drivers.http_health:HttpHealthCheck",
        "simulated": "include.slow_injection.drivers.simulated:SimulatedHealthCheck",
    },
    "platform": {
        "kubernetes": "include.slow_injection.drivers.kubernetes:KubernetesPlatform",
        "simulated": "include.slow_injection.drivers.simulated:SimulatedPlatform",
    },
    "data_sync": {
        "dms": "include.slow_injection.drivers.aws_dms:DmsTaskSync",
        "postgres": "include.slow_injection.drivers.postgres_sync:PostgresSync",
        "simulated": "include.slow_injection.drivers.simulated:SimulatedDataSync",
    },
    "data_replication": {
        "dms": "include.slow_injection.drivers.aws_dms_replication:DmsReplication",
        "postgres_logical": "include.slow_injection.drivers.postgres_logical:PostgresLogical",
    },
    "fargate_profiles": {
        "eks": "include.slow_injection.drivers.aws_eks:EksFargateProfiles",
    },
    "notifier": {
        "log": "include.slow_injection.drivers.log_notifier:LogNotifier",
        "slack": "include.slow_injection.drivers.slack_notifier:SlackNotifier",
        "sns": "include.slow_injection.drivers.aws_sns:SnsNotifier",
        "simulated": "include.slow_injection.drivers.simulated:SimulatedNotifier",
    },
}

_extra: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}

# What a driver of each kind must implement; checked when a spec names the driver.
PORTS: dict[str, type] = {
    "router": ports.Router,
    "metric_source": ports.MetricSource,
    "health_check": ports.HealthCheck,
    "platform": ports.Platform,
    "notifier": ports.Notifier,
    "data_sync": ports.DataSync,
    "data_replication": ports.DataReplication,
    "fargate_profiles": ports.FargateProfiles,
}


def port_methods(port: type) -> tuple[str, ...]:
    """The methods (class methods too) a Protocol class of ports.py declares."""
    return tuple(
        name
        for name, value in vars(port).items()
        if (callable(value) or isinstance(value, classmethod)) and not name.startswith("_")
    )


PORT_METHODS: dict[str, tuple[str, ...]] = {kind: port_methods(port) for kind, port in PORTS.items()}


class UnknownDriver(LookupError):
    pass


def register(kind: str, type_name: str, target: str) -> None:
    """Add a driver ("package.module:Class") under a spec type name."""
    if kind not in KINDS:
        raise ValueError(f"unknown driver kind {kind!r}; kinds: {', '.join(KINDS)}")
    _extra[kind][type_name] = target


def known(kind: str) -> list[str]:
    return sorted({**_BUILTIN[kind], **_extra[kind]})


def driver_class(kind: str, type_name: str) -> type[Any]:
    target = _extra[kind].get(type_name) or _BUILTIN[kind].get(type_name)
    if target is None:
        raise UnknownDriver(f"unknown {kind.replace('_', ' ')} type {type_name!r}; known: {', '.join(known(kind))}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def missing_methods(kind: str, cls: type) -> list[str]:
    """The methods of the port of `kind` a driver class lacks."""
    return [m for m in PORT_METHODS[kind] if not callable(getattr(cls, m, None))]


def with_settings(kind: str, ref: Any) -> tuple[Any, BaseModel]:
    """The driver class a DriverRef names and its validated settings, without building it (no
    connection: DAGs and plans use its class methods)."""
    data = dict(ref if isinstance(ref, dict) else ref.model_dump())
    cls = driver_class(kind, data.pop("type"))
    data.pop("connection", None)
    return cls, cls.Settings.model_validate(data)


def build(kind: str, ref: Any, **context: Any) -> Any:
    """Instantiate the driver a DriverRef (model or its dict form) names."""
    data = ref if isinstance(ref, dict) else ref.model_dump()
    data = dict(data)
    type_name = data.pop("type")
    connection_id = data.pop("connection", None)
    cls = driver_class(kind, type_name)
    settings = cls.Settings.model_validate(data)
    return cls.from_spec(settings, connection_id, **context)
