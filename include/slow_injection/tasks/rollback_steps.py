"""The rollback group's steps, in their order: blue's capacity back, every router to 100 % blue, the
scheduled jobs back on blue."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.gates.verdict import breaker_moves
from include.slow_injection.ports import Weights
from include.slow_injection.tasks.notify import notify
from include.slow_injection.tasks.operators import WaveStep, build_platform, converge_traffic, is_dry_run


class RollbackWorkloads(WaveStep):
    """First rollback step, before traffic moves: blue's capacity back, and moved scheduled jobs stop
    starting runs on green (they resume on blue in HandJobsBack, once green's running Job ended)."""

    ui_color = "#fde2e1"

    def __init__(self, *, platform: dict[str, Any], workloads: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform, self.workloads = platform, workloads

    def execute(self, context: Any) -> dict[str, Any]:
        if self.verifying(context):  # a completed wave's blue may be gone: drift holds for a human instead
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("the wave completed earlier: this run only verifies, never rolls back")
        failures: list[str] = []
        try:
            dry_run = is_dry_run(context)
            driver = build_platform(self.platform)
            changes = []
            for service, workload in self.in_scope(context, self.workloads).items():
                try:
                    changes += self.report_changes(driver.restore_blue(workload, apply=not dry_run), dry_run)
                except Exception as err:
                    failures.append(f"{service}: {err}")
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}")
            raise
        finally:
            # Announced after the restore was tried (a slow notifier must not delay it), on the
            # first try only (not again on every retry), whatever happened.
            if context["ti"].try_number <= 1:
                notify(
                    self.notifications,
                    "rollback_started",
                    f"wave {self.wave_id}: rollback started",
                    "; ".join(failures) if failures else "blue's capacity is restored; traffic goes back next",
                )
        if failures:
            raise RuntimeError("could not restore on blue (will retry): " + "; ".join(failures))
        return {"dry_run": dry_run, "changes": changes}


class HandJobsBack(WaveStep):
    """Last rollback step: each scheduled job runs on blue again, with the handover's no-overlap rule:
    blue is unsuspended only once green's running Job (if any) has ended. Waits up to `wait_timeout`."""

    ui_color = "#fde2e1"

    def __init__(
        self,
        *,
        platform: dict[str, Any],
        workloads: dict[str, dict[str, Any]],
        wait_timeout: float,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.platform, self.workloads = platform, workloads
        self.wait_timeout, self.poll_interval = wait_timeout, poll_interval

    def execute(self, context: Any) -> dict[str, Any]:
        import time

        from include.slow_injection.ports import JobStillActive

        dry_run = is_dry_run(context)
        driver = build_platform(self.platform)
        changes, deadline = [], time.monotonic() + self.wait_timeout
        for service, workload in self.in_scope(context, self.workloads).items():
            while True:
                try:
                    changes += self.report_changes(driver.activate(workload, "blue", apply=not dry_run), dry_run)
                    self.publish(context, service, None, "green" if dry_run and changes else "blue")
                    break
                except JobStillActive as err:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{service}: {err} (waited {self.wait_timeout:.0f}s; will retry)") from err
                    self.log.info("%s: %s; checking again in %.0fs", service, err, self.poll_interval)
                    time.sleep(self.poll_interval)
        self.log.info("wave %s: scheduled jobs back on blue", self.wave_id)
        return {"dry_run": dry_run, "changes": changes}


def manual_rollback_step(service: str, router_ref: dict[str, Any]) -> str:
    """What an operator must do for a router the rollback could not reach: which service, which router
    (its spec settings), which weights; the driver's own command when it has one (`by_hand`)."""
    settings = ", ".join(f"{k} {v}" for k, v in router_ref.items() if k != "type" and v not in (None, {}, []))
    blue = Weights.green_at(0)
    step = f"set {service} to 100 % blue by hand: router {router_ref.get('type')} ({settings}) to {blue}"
    try:
        command = getattr(registry.build("router", router_ref, service=service), "by_hand", None)
        if command is not None:
            step += f" — {command(blue)}"
    except Exception:
        pass
    return step


class RollbackTraffic(WaveStep):
    """Every exposed service back to 100 % blue, read back. A router that cannot be reached fails
    the task (retried) only after the others are done, and the message says what is left. A router a
    gate's circuit breaker moved already (`breaker_gate_ids`) is found at 0 % green and left alone."""

    ui_color = "#fde2e1"

    def __init__(
        self, *, routers: dict[str, dict[str, Any]], breaker_gate_ids: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.routers = routers
        self.breaker_gate_ids = breaker_gate_ids or []

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        results, left, by_hand = {}, [], []
        for service, router in self.in_scope(context, self.routers).items():
            try:
                results[service] = converge_traffic(self, service, router, Weights.green_at(0), dry_run)
                self.publish(context, service, results[service]["green"])
            except Exception as err:
                left.append(f"{service} ({router.get('type')}): {err}")
                by_hand.append(manual_rollback_step(service, router))
        if left:
            ti = context["ti"]
            ti.xcom_push(key="left_by_hand", value=by_hand)  # the run's report names them
            tries = getattr(ti, "max_tries", self.retries or 0) + 1
            if ti.try_number >= tries:
                notify(
                    self.notifications,
                    "rollback_failed",
                    f"wave {self.wave_id}: rollback INCOMPLETE, traffic NOT back on blue",
                    "\n".join(by_hand),
                )
                then = f" — retries ran out (try {ti.try_number} of {tries}); DO BY HAND: "
            else:
                then = f" — retrying (try {ti.try_number} of {tries}); if retries run out, do by hand: "
            raise RuntimeError("traffic NOT yet back on blue for: " + "; ".join(left) + then + " | ".join(by_hand))
        breaker = breaker_moves(context["ti"], self.breaker_gate_ids)  # read after the move: it never waits on this
        for line in breaker:
            self.log.info("%s", line)
        notify(
            self.notifications,
            "rollback_finished",
            f"wave {self.wave_id}: all traffic back on blue",
            "\n".join(breaker + [f"{s}: {r['before']} → blue 100, green 0" for s, r in results.items()]),
        )
        return {"dry_run": dry_run, "services": results, **({"breaker": breaker} if breaker else {})}
