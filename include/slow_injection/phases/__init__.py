"""The seed's phases in order, each a pure planner (spec in, stages out): the DAG builder, the plan
text and the board read the same stages."""

from __future__ import annotations

from include.slow_injection.phases import (
    full_transition,
    gradual_transition,
    parallel_operation,
    post_release,
    preparation,
    release_monitoring,
    scheduled_jobs,
    validation,
)

STAGE_PHASES = (
    preparation,
    scheduled_jobs,
    parallel_operation,
    validation,
    gradual_transition,
    full_transition,
    release_monitoring,
)
PHASES = tuple(m.PHASE for m in STAGE_PHASES) + (post_release.PHASE,)
