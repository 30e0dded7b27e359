"""Control flow of a wave run: the decision after each stage, the rollback, and how a run ends."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import registry
from include.slow_injection.gates.verdict import Verdict, pull
from include.slow_injection.ports import Weights
from include.slow_injection.tasks.notify import notify
from include.slow_injection.tasks.operators import WaveStep, build_platform, converge_traffic, is_dry_run
from include.slow_injection.tasks.scope import verifying

CONTINUE, ROLLBACK, HOLD = "continue", "rollback", "hold"


def judge(actions: dict[str, Any], verdicts: dict[str, Verdict | None], dry_run: bool = False) -> tuple[str, list[str]]:
    """Outcome of a stage from its actions' results and its gates' verdicts (None = missing).

    A missing result means the task failed or crashed: that is a failure, never a pass. In a dry-run
    nothing moved, so a gate's single reading is shown, not judged (only when the run is a dry-run)."""
    if dry_run:
        verdicts = {t: (v.model_copy(update={"status": "pass"}) if v and v.dry_run else v) for t, v in verdicts.items()}
    reasons: list[str] = []
    held = []
    for task_id, result in actions.items():
        if result is None:
            reasons.append(f"{task_id} did not complete")
        elif isinstance(result, dict) and (result.get("scope") or {}).get("status") == "hold":
            held.append(f"{task_id} is holding: {result['scope']['reason']}")
    for task_id, verdict in verdicts.items():
        if verdict is None:
            reasons.append(f"{task_id} gave no verdict (failed or timed out)")
        elif verdict.status == "skipped":  # out of this run's scope, said why in the report
            continue
        elif verdict.status == "fail":
            reasons.append(f"gate {verdict.gate} failed: {verdict.reason}")
        elif verdict.status == "hold":
            held.append(f"gate {verdict.gate} is holding: {verdict.reason}")
    if reasons:
        return ROLLBACK, reasons + held
    if held:
        return HOLD, held
    return CONTINUE, []


class StageDecision(BaseBranchOperator):
    """After a stage: continue, roll back, or hold. Runs when its stage ran (NONE_SKIPPED), so a
    failed step or gate reaches it too."""

    ui_color = "#f3e8fd"

    def __init__(
        self,
        *,
        wave_id: str,
        stage: str,
        action_ids: list[str],
        gate_ids: list[str],
        rollback_marker: str,
        hold_marker: str,
        automatic_rollback: bool,
        completes_phase: str | None = None,
        notifications: list[dict[str, Any]] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wave_id, self.stage, self.plan_task_id = wave_id, stage, plan_task_id
        self.action_ids, self.gate_ids = action_ids, gate_ids
        self.rollback_marker, self.hold_marker = rollback_marker, hold_marker
        self.automatic_rollback = automatic_rollback
        self.completes_phase = completes_phase
        self.notifications = notifications or []

    def choose_branch(self, context: Any) -> list[str]:
        ti = context["ti"]
        verdicts: dict[str, Verdict | None] = {}
        try:
            actions = {t: ti.xcom_pull(task_ids=t) for t in self.action_ids}
            verdicts = {t: pull(ti, t) for t in self.gate_ids}
            outcome, reasons = judge(actions, verdicts, dry_run=bool(context["params"].get("dry_run")))
        except Exception as err:
            outcome, reasons = ROLLBACK, [f"could not read the stage's results: {err}"]
        if outcome == ROLLBACK and not self.automatic_rollback:
            outcome, reasons = HOLD, reasons + ["automatic rollback is off: a human decides"]
        if outcome == ROLLBACK and verifying(context, self.plan_task_id):
            # A completed wave's blue may be retired: drift is reported, never "rolled back" into.
            outcome, reasons = HOLD, reasons + ["the wave completed earlier: drift holds for a human, no rollback"]
        ti.xcom_push(key="decision", value={"stage": self.stage, "outcome": outcome, "reasons": reasons})
        for reason in reasons:
            self.log.warning("%s: %s", self.stage, reason)
        if outcome == CONTINUE:
            self.log.info("%s: every check passed, continuing", self.stage)
            if self.completes_phase:
                notify(self.notifications, "phase_completed", f"wave {self.wave_id}: {self.completes_phase} completed")
            return sorted(self.downstream_task_ids - {self.rollback_marker, self.hold_marker})
        failed = [v for v in verdicts.values() if v and v.status != "pass"]
        if failed or reasons:
            notify(
                self.notifications,
                "gate_failed",
                f"wave {self.wave_id}: {self.stage} → {outcome}",
                "\n".join(reasons + [v.summary() for v in failed]),
            )
        return [self.rollback_marker if outcome == ROLLBACK else self.hold_marker]


def collect_decisions(ti: Any, decision_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for task_id in decision_ids:
        decision = ti.xcom_pull(task_ids=task_id, key="decision")
        if decision:
            out.append(decision)
    return out


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
    the task (retried) only after the others are done, and the message says what is left."""

    ui_color = "#fde2e1"

    def __init__(self, *, routers: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.routers = routers

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
        notify(
            self.notifications,
            "rollback_finished",
            f"wave {self.wave_id}: all traffic back on blue",
            "\n".join(f"{s}: {r['before']} → blue 100, green 0" for s, r in results.items()),
        )
        return {"dry_run": dry_run, "services": results}


class EndWave(WaveStep):
    """How a run ends. `completed` succeeds; `rolled_back` and `held` fail on purpose, so the run
    is red while the rollback tasks stay green."""

    def __init__(
        self, *, outcome: str, decision_ids: list[str], gate_ids: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.outcome, self.decision_ids, self.gate_ids = outcome, decision_ids, gate_ids or []

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        decisions = collect_decisions(ti, self.decision_ids)
        stopped = [d for d in decisions if d["outcome"] != "continue"]
        lines = [f"- {d['stage']}: {'; '.join(d['reasons']) or d['outcome']}" for d in stopped]
        if self.outcome == "rolled_back" and not stopped:  # a fast rollback can finish before the decision
            for task_id in self.gate_ids:
                verdict = pull(ti, task_id)
                if verdict and verdict.status == "fail":
                    lines.append(f"- {task_id}: {verdict.reason}")
        why = "\n".join(lines)
        from include.slow_injection.tasks import wave_state

        if self.outcome == "completed":
            scope = self.scope(context)
            if scope is not None and scope.verify:
                self.log.info("wave %s: the world is as the completed wave left it; nothing changed", self.wave_id)
                return {"outcome": "verified"}
            whole = scope is None or scope.whole_wave
            if not is_dry_run(context) and whole:
                wave_state.mark_completed(self.wave_id, context["run_id"])
            moved = (
                "all traffic on green" if scope is None or whole else f"services {', '.join(scope.services)} on green"
            )
            notify(self.notifications, "wave_completed", f"wave {self.wave_id} completed: {moved}")
            return {"outcome": "completed", "whole_wave": whole, "dry_run": is_dry_run(context)}
        if self.outcome == "held":
            notify(self.notifications, "wave_held", f"wave {self.wave_id} is holding", why)
            raise AirflowFailException(
                f"wave {self.wave_id} is HOLDING where it stopped (no rollback):\n{why}\n"
                "Fix the cause, then clear the failed gate with its downstream tasks to measure again."
            )
        if not is_dry_run(context):
            wave_state.clear(self.wave_id)
        raise AirflowFailException(f"wave {self.wave_id} was ROLLED BACK to blue:\n{why or '- a step failed'}")


class PublishCompletion(WaveStep):
    """The wave's Asset event (what `schedule.after` in later waves waits for): only when this run
    really completed the whole wave (EndWave `completed_task_id` says so) — a dry-run, a subset or a
    verification publishes nothing."""

    def __init__(self, *, completed_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("notifications", [])
        super().__init__(**kwargs)
        self.completed_task_id = completed_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        import time

        from airflow.sdk.exceptions import AirflowSkipException

        from include.slow_injection.assets import wave_asset

        ended = context["ti"].xcom_pull(task_ids=self.completed_task_id) or {}
        if ended.get("outcome") != "completed" or ended.get("dry_run") or not ended.get("whole_wave"):
            raise AirflowSkipException(
                f"no completion to publish ({ended.get('outcome', 'not completed')}, "
                f"dry-run {bool(ended.get('dry_run'))}, whole wave {bool(ended.get('whole_wave'))})"
            )
        context["outlet_events"][wave_asset(self.wave_id)].extra = {
            "wave": self.wave_id,
            "outcome": "completed",
            "run_id": context["run_id"],
            "at": time.time(),
        }
        return {"published": wave_asset(self.wave_id).uri}
