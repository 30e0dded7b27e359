"""A rollback whose router cannot be reached: the traffic step retries, then fails loudly, naming what is
left to do by hand (which service, which router, which weights); the `rollback_failed` notification
and the run's report (outcome and a "Left to do by hand" section) name it too.

The whole wave runs with dag.test() on the simulated world, whose router goes down right after the
25 % step (its gate then fails, so the wave rolls back into the outage). The HAProxy case runs the
rollback step against a real HAProxy whose admin socket is gone, for the driver's exact command."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.slow_injection.drivers.simulated import SimulatedRouter
from include.slow_injection.tasks.rollback_steps import RollbackTraffic
from tests.support.reruns import STEP, AdminSocketGone, HAProxy, context, haproxy_router, sets
from tests.support.waves import events, healthy_world, run_wave, small_wave, weights_history


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_rollback_into_an_unreachable_router_fails_loudly_and_the_report_says_what_to_do_by_hand(
    tmp_path: Path, world, monkeypatch: pytest.MonkeyPatch, reports_dir: Path
) -> None:
    broken = healthy_world()
    broken["metrics"]['error_ratio{service="web",env="green"}'] = {
        "router": "web",
        "when_green_at_least": 25,
        "value": 0.2,
        "otherwise": 0.001,
    }
    world.reset(broken)
    original = SimulatedRouter.set_weights

    def set_then_go_down(self, weights):
        original(self, weights)
        if weights.green == 25:  # the router becomes unreachable right after the first step
            self.world.update(lambda s: s.setdefault("faults", {}).update(router_down=True))

    monkeypatch.setattr(SimulatedRouter, "set_weights", set_then_go_down)
    data = small_wave(world.path.stem, "byhand")
    data["rollback"] = {"retries": 2, "retry_delay": 0.2}
    state, tis = run_wave(tmp_path, world, data)

    assert state == "failed"
    assert tis["rollback.traffic_to_blue"] == "failed" and tis["rollback.wave_rolled_back"] == "upstream_failed"
    assert world.read()["routers"]["web"] == {"blue": 75, "green": 25}  # the outage is real: users still on green
    assert weights_history(world) == [25]

    # The notification that retries ran out, with what to do, once (on the last try only).
    failed = [n for n in world.read()["notifications"] if n["event"] == "rollback_failed"]
    assert len(failed) == 1, events(world)
    assert "rollback INCOMPLETE" in failed[0]["subject"]
    step = failed[0]["body"]
    assert step.startswith("set web to 100 % blue by hand: router simulated (world ") and step.endswith(
        "to blue 100, green 0"
    ), step

    # The report: the outcome says the rollback is incomplete, and a section lists the step.
    folder = reports_dir / "wave_byhand" / run_wave.last_run_id.replace(":", "_")
    report = (folder / "report.md").read_text()
    assert "**Outcome: rollback INCOMPLETE: traffic NOT back on blue, finish by hand (see below)**" in report
    section = report.split("## Left to do by hand\n\n")[1].split("\n\n")[0]
    assert section == f"- {step}", section
    assert "rollback INCOMPLETE" in (folder / "report.html").read_text()


def test_the_haproxy_rollback_error_names_backend_servers_weights_and_the_command(
    haproxy: HAProxy, haproxy_commands: list[str]
) -> None:
    haproxy.set_green(25)
    step = RollbackTraffic(task_id="traffic_to_blue", routers={"web": haproxy_router()}, retries=3, **STEP)
    with AdminSocketGone(haproxy), pytest.raises(RuntimeError) as retrying:
        step.execute(context(try_number=2))
    message = str(retrying.value)
    assert message.startswith("traffic NOT yet back on blue for: web (haproxy): ")
    assert (
        " — retrying (try 2 of 4); if retries run out, do by hand: set web to 100 % blue by hand: router "
        "haproxy (connection rt_haproxy, backend web, blue_server blue, green_server green) to blue 100, "
        "green 0 — HAProxy backend web: `set weight web/blue 100; set weight web/green 0` on the runtime "
        f"API at {haproxy.socket}" in message
    ), message
    assert sets(haproxy_commands) == [] and haproxy.green() == 25

    with AdminSocketGone(haproxy), pytest.raises(RuntimeError) as exhausted:
        step.execute(context(try_number=4))
    assert " — retries ran out (try 4 of 4); DO BY HAND: set web to 100 % blue by hand" in str(exhausted.value)
