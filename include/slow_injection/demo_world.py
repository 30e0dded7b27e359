"""The simulated blue/green world behind the demo wave (include/waves/demo-shop.yaml)."""

from __future__ import annotations

from typing import Any


def healthy_shop() -> dict[str, Any]:
    """Blue runs everything; green is healthy once workloads are copied there."""
    return {
        "routers": {"catalog": {"blue": 100, "green": 0}, "checkout": {"blue": 100, "green": 0}},
        "workloads": {
            "blue": {
                "CronJob/shop/nightly-report": {"suspended": False},
                "Deployment/shop/catalog": {"replicas": 3},
                "Deployment/shop/checkout": {"replicas": 4},
            },
            "green": {},
        },
        "metrics": {
            'job_failures{service="nightly-report",env="green"}': 0,
            'error_ratio{service="catalog",env="green"}': 0.002,
            'error_ratio{service="checkout",env="green"}': 0.001,
            'error_ratio{service="checkout",env="blue"}': 0.001,
            'latency_p95_seconds{service="checkout",env="green"}': 0.21,
        },
        "health": {"catalog-green": True},
    }


def checkout_breaks_at(weight: int) -> dict[str, Any]:
    """Drill: checkout's errors on green jump to 20 % once it takes `weight` % of traffic."""
    world = healthy_shop()
    world["metrics"]['error_ratio{service="checkout",env="green"}'] = {
        "router": "checkout",
        "when_green_at_least": weight,
        "value": 0.2,
        "otherwise": 0.001,
    }
    return world
