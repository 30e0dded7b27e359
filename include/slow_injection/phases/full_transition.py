"""Full transition: every exposed service confirmed at 100 % green, then end-to-end checks."""

from __future__ import annotations

from include.slow_injection import registry
from include.slow_injection.kinds import e2e_test, set_traffic
from include.slow_injection.phases.common import monitoring_gates, ordered
from include.slow_injection.plan import Action, Gate, Stage
from include.slow_injection.spec.models import Wave, green_namespaces

PHASE = "full_transition"


def stages(wave: Wave) -> list[Stage]:
    actions = [
        Action(f"confirm_{s.name}", set_traffic.KIND.name, s.name, 100, f"confirm {s.name} at 100 % green")
        for s in ordered(wave, "exposed")
    ]
    gates = monitoring_gates(wave.full_transition) + e2e_test_gates(wave)
    return [Stage(PHASE, (), "all on green", actions, gates)] if (actions or gates) else []


def e2e_test_gates(wave: Wave) -> list[Gate]:
    """The team's test pod, its namespace and connection resolved from green's defaults."""
    test = wave.full_transition.e2e_test
    if test is None:
        return []
    green = wave.environments.green.platform
    resolved = test.model_copy(
        update={
            "namespace": test.namespace or green_namespaces(wave)[0],
            "connection": test.connection
            or registry.driver_class("platform", green.type).pod_connection(green.connection),
        }
    )
    return [Gate(f"e2e_{test.name}", e2e_test.KIND.name, resolved, None, 0.0)]
