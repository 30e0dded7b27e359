"""The seed's phases in order, each with its builder."""

from __future__ import annotations

from include.slow_injection.builders import (
    full_transition,
    gradual_transition,
    parallel_operation,
    preparation,
    release_monitoring,
    scheduled_jobs,
    validation,
)

STAGE_PHASES = (preparation, scheduled_jobs, parallel_operation, validation, gradual_transition,
                full_transition, release_monitoring)
PHASES = tuple(m.PHASE for m in STAGE_PHASES) + ("post_release",)
