"""Full transition: every exposed service confirmed at 100 % green, then end-to-end checks."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, Gate, Stage, monitoring_gates, ordered
from include.slow_injection.spec.models import E2eTest, Wave, green_namespaces

PHASE = "full_transition"


def stages(wave: Wave) -> list[Stage]:
    actions = [Action(f"confirm_{s.name}", "set_traffic", f"confirm {s.name} at 100 % green", s.name, 100)
               for s in ordered(wave, "exposed")]
    gates = monitoring_gates(wave.full_transition) + e2e_test_gates(wave)
    return [Stage(PHASE, (), "all on green", actions, gates)] if (actions or gates) else []


def e2e_test_gates(wave: Wave) -> list[Gate]:
    """The team's test pod, its namespace and connection resolved from green's defaults."""
    test = wave.full_transition.e2e_test
    if test is None:
        return []
    resolved: E2eTest = test.model_copy(update={
        "namespace": test.namespace or green_namespaces(wave)[0],
        "connection": test.connection or wave.environments.green.platform.connection,
    })
    return [Gate(f"e2e_{test.name}", "e2e_test", resolved, None, 0.0)]
