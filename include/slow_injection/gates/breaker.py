"""Circuit breaker: a metric gate that fails at a traffic step moves its service's users back to blue
itself, at once, instead of waiting for the rollback's scheduler hops (decide → marker → restore blue →
traffic, about a second each). It only moves that one router to 0 % green and records it in the verdict;
the gate then fails as before and the rollback group converges everything (capacity, every router, jobs),
finding this router at 0 % already.

What may trip it is decided when the DAG is built (kinds/base.py `breaker`: a traffic step, the service's
router, automatic rollback, no `validation.data_sync.before_rollback`) and at run time by the gate task
(never while a completed wave is only verified). Here: only a `fail` trips it, never a hold or a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from include.slow_injection import registry
from include.slow_injection.gates.verdict import BreakerMove, Verdict
from include.slow_injection.ports import ReadbackMismatch, Weights

BLUE = Weights.green_at(0)


def trip(
    verdict: Verdict,
    breaker: dict[str, Any] | None,
    *,
    dry_run: bool = False,
    build: Callable[..., Any] = registry.build,
    clock: Callable[[], float] = time.time,
) -> Verdict:
    """The verdict, with what the breaker did when it is armed (`breaker`: {"service", "router"}) and the
    gate failed. Convergent: a router at 0 % green already is left alone. Never raises: a move that
    failed is recorded (the rollback's traffic step still moves it)."""
    if breaker is None or verdict.status != "fail" or verdict.breaker is not None and not verdict.breaker.error:
        return verdict
    service, router_name = breaker["service"], str(breaker["router"].get("type"))
    before, changed, error = "", False, None
    try:
        router = build("router", breaker["router"], service=service)
        router_name = router.describe()
        try:
            found: Weights | None = router.get_weights()
            foreign = False
        except ReadbackMismatch as err:  # someone else's split: back to blue all the same (as the rollback does)
            found, foreign = err.found, True
        before = str(found or "unreadable")
        if not dry_run and (found != BLUE or foreign):
            router.set_weights(BLUE)
            after = router.get_weights()
            if after != BLUE:
                raise RuntimeError(f"set {BLUE} but reads back {after}")
            changed = True
    except Exception as err:
        error = f"{err}"[:300]
    # every field given, so XCom (which leaves out what was not set) holds them all
    move = BreakerMove(
        service=service, router=router_name, at=clock(), before=before, changed=changed, dry_run=dry_run, error=error
    )
    return verdict.model_copy(update={"breaker": move})
