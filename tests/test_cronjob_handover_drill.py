"""Handover drill against the real CronJob controller: 24 `* * * * *` CronJobs (each a blue namespace
and a green one of the same cluster) switch sides twice, at two consecutive minute ticks T1 and T2, at
offsets from 50 s before a tick down to 0.2 s before it and just after it (the controller acts ~0.1 s after
a tick: a suspend landing right then is its race, where the Job exists but the status write naming it is
lost). Half start on blue (handover at T1, hand-back at T2); half were handed over during the setup
(hand-back at T1, handover again at T2), so two ticks cover both orders and the drill stays near two
minutes (no e2e marker). A handover is the driver's `activate(workload, "green")`; a hand-back is the
rollback's `restore_blue` then `activate(workload, "blue")`, as the DAG makes them.

Some CronJobs' Jobs run 20 s (kwok's pod-complete delay on the job template): a switch asked for while one
runs is refused (JobStillActive) and tried again, every second like a quick task retry. Others delete their
Jobs as soon as they finish (ttlSecondsAfterFinished: 0); those retry every 6 s, and their hand-back's
`activate` comes 6 s after `restore_blue` (the rollback's jobs_to_blue runs after traffic_to_blue): a Job
the driver did not write down in time leaves no trace on the cluster by then.

A watcher lists every Job every 0.5 s and keeps its scheduled-timestamp annotation, so Jobs deleted later
still count. Then: no scheduled time ran twice (on both sides, or twice on one), and every minute tick from
a CronJob's first switch to T2 ran exactly once on one side. Before the driver stopped suspending within
SETTLE of a tick, the switches just after a tick lost the controller's status write (its UnexpectedJob
events) and the Jobs deleted at once made that time run on both sides (2 duplicates in each of two runs).

concurrencyPolicy is Forbid: across the two sides the handover refuses to start one side while the other
side's Job runs, which is Forbid's meaning on one cluster (under Allow, with Jobs longer than the period,
that wait would drop ticks; no overlap happens here either way: Jobs run ≤ 20 s).
startingDeadlineSeconds is left unset: a tick missed while both sides are suspended (the settle wait, a
refused switch) is run late by the side that resumes, never dropped.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.ports import JobStillActive
from tests.support.kube_support import JobRecorder, _hms, minute_cronjob

LONG_JOB_MS = 20_000
QUICK_RETRY, SLOW_RETRY = 1.0, 6.0  # seconds between a refused switch and the next try
GIVE_UP = 45.0  # a switch refused that long fails the drill
# One CronJob pair per row: (side it runs on at the start, Jobs run 20 s, Jobs deleted once finished,
# (seconds before T1, seconds before T2) at which its switches start; negative: after the tick).
# A 20 s Job of T1 still runs 45-50 s before T2: those switches are refused until it ends.
PLAN: list[tuple[str, bool, bool, tuple[float, float]]] = [
    ("blue", False, False, (10, 30)),
    ("blue", False, False, (5, 0.2)),
    ("blue", False, True, (2, -0.08)),
    ("blue", False, True, (1, 0)),
    ("blue", False, False, (0.5, 5)),
    ("blue", False, True, (0.2, -0.05)),
    ("blue", False, False, (0, 1)),
    ("blue", False, True, (-0.1, 10)),
    ("blue", True, False, (5, 50)),
    ("green", False, False, (10, 0.5)),
    ("green", False, True, (2, -0.03)),
    ("green", False, True, (-0.06, 2)),
    ("green", False, False, (0.2, 30)),
    ("green", False, True, (-0.12, 0.2)),
    ("green", True, True, (1, 45)),
    ("green", True, False, (0.5, 48)),
    # Both switches just after the tick, Jobs deleted once finished: chances to meet the lost status write.
    ("blue", False, True, (-0.02, -0.11)),
    ("blue", False, True, (-0.04, -0.13)),
    ("blue", False, True, (-0.07, -0.15)),
    ("blue", False, True, (-0.09, -0.18)),
    ("green", False, True, (-0.02, -0.11)),
    ("green", False, True, (-0.04, -0.13)),
    ("green", False, True, (-0.07, -0.15)),
    ("green", False, True, (-0.09, -0.18)),
]


@dataclass
class Switch:
    pair: int
    to: str
    tick: float | None  # None: the untimed handover of the setup
    offset: float = 0.0  # asked: seconds before the tick
    started: float = 0.0  # epoch s
    took: float = 0.0
    refused: int = 0  # JobStillActive answers before it went through
    error: str | None = None
    log: list[str] = field(default_factory=list)  # what each call answered, at seconds from the tick


@dataclass
class Pair:
    index: int
    blue: str
    green: str
    start: str
    long_jobs: bool
    ttl_zero: bool
    offsets: tuple[float, float]
    switches: list[Switch] = field(default_factory=list)

    @property
    def workload(self) -> dict[str, Any]:
        return {"kind": "CronJob", "namespace": self.blue, "name": "report", "green_namespace": self.green}

    @property
    def directions(self) -> tuple[str, str]:
        return ("green", "blue") if self.start == "blue" else ("blue", "green")

    @property
    def retry(self) -> float:
        return SLOW_RETRY if self.ttl_zero else QUICK_RETRY


def switch(driver: KubernetesPlatform, pair: Pair, to: str, log: Any = lambda _: None) -> int:
    """One switch the way the DAG makes it, tried again while the side it leaves still runs a Job."""
    if to == "blue":
        log(f"restore_blue: {[str(c) for c in driver.restore_blue(pair.workload, apply=True)]}")
        if pair.ttl_zero:
            time.sleep(SLOW_RETRY)  # traffic_to_blue runs between restore_blue and jobs_to_blue
    refused, deadline = 0, time.monotonic() + GIVE_UP
    while True:
        try:
            log(f"activate {to}: {[str(c) for c in driver.activate(pair.workload, to, apply=True)]}")
            return refused
        except JobStillActive as err:
            log(f"refused: {err}")
            refused += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(pair.retry)


def timed_switch(driver: KubernetesPlatform, pair: Pair, to: str, tick: float | None, offset: float = 0.0) -> bool:
    if tick is not None:
        time.sleep(max(0.0, tick - offset - time.time()))
    record = Switch(pair.index, to, tick, offset, started=time.time())
    pair.switches.append(record)
    base = tick if tick is not None else record.started
    try:
        record.refused = switch(driver, pair, to, lambda line: record.log.append(f"{time.time() - base:+.2f} {line}"))
    except Exception as err:
        record.error = repr(err)
    record.took = time.time() - record.started
    return record.error is None


def set_up(kube: Any, index: int, row: tuple[str, bool, bool, tuple[float, float]]) -> tuple[Pair, KubernetesPlatform]:
    start, long_jobs, ttl_zero, offsets = row
    pair = Pair(index, kube.namespace("shop"), kube.namespace("green"), start, long_jobs, ttl_zero, offsets)
    access = KubeAccess(kube.plane.api_client())
    access.create("CronJob", pair.blue, minute_cronjob(pair.blue, LONG_JOB_MS if long_jobs else 0, ttl_zero))
    driver = KubernetesPlatform(access, access, KubernetesPlatform.Settings())
    driver.deploy_green(pair.workload, apply=True)  # created suspended
    if start == "green":
        timed_switch(driver, pair, "green", None)
    return pair, driver


def run_pair(pair: Pair, driver: KubernetesPlatform, ticks: list[float]) -> None:
    for to, tick, offset in zip(pair.directions, ticks, pair.offsets, strict=False):
        if not timed_switch(driver, pair, to, tick, offset):
            return


@dataclass
class Outcome:
    pairs: list[Pair]
    ticks: list[float]
    runs: dict[int, list[tuple[float, str]]]  # pair → (scheduled time, side) of every Job seen
    duplicates: list[str]
    gaps: list[str]
    errors: list[str]
    ticks_covered: int
    lost_writes: int  # the controller's UnexpectedJob events: a running Job its status does not name
    wall: float
    details: dict[int, list[str]] = field(default_factory=dict)  # pair → its Jobs and the controller's events

    @property
    def switches(self) -> list[Switch]:
        return [s for p in self.pairs for s in p.switches if s.tick is not None]

    def summary(self) -> str:
        done = [s for s in self.switches if s.error is None]
        handovers = sum(s.to == "green" for s in done)
        refused = [s for s in done if s.refused]
        offsets = sorted({o for p in self.pairs for o in p.offsets}, reverse=True)
        return (
            f"handover drill: {handovers} handovers + {len(done) - handovers} hand-backs at two minute ticks on "
            f"{len(self.pairs)} CronJob pairs; {len(refused)} refused while a Job ran (JobStillActive, up to "
            f"{max((s.refused for s in done), default=0)} tries); {self.lost_writes} lost status writes seen "
            f"(UnexpectedJob); {self.ticks_covered} ticks covered, {len(self.duplicates)} duplicates, "
            f"{len(self.gaps)} gaps, {len(self.errors)} errors; offsets (s before a tick, negative = after) "
            f"{', '.join(f'{o:g}' for o in offsets)}; wall {self.wall:.0f} s"
        )


def run_drill(kube: Any, plan: list[tuple[str, bool, bool, tuple[float, float]]] = PLAN) -> Outcome:
    began = time.time()
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda item: set_up(kube, *item), enumerate(plan)))
    pairs = [pair for pair, _ in made]
    recorder = JobRecorder(kube.api_client, {ns for p in pairs for ns in (p.blue, p.green)})
    recorder.start()
    lead = max(p.offsets[0] for p in pairs) + 1.0
    first = (int(time.time() + lead) // 60 + 1) * 60.0
    ticks = [first, first + 60.0]
    threads = [threading.Thread(target=run_pair, args=(pair, driver, ticks), daemon=True) for pair, driver in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, ticks[-1] + 90 - time.time()))
    last = ticks[-1]
    while time.time() < last + 30 and not all(last in recorder.runs(p.blue) + recorder.runs(p.green) for p in pairs):
        time.sleep(0.5)
    recorder.stop()
    duplicates, gaps, covered, ran = [], [], 0, {}
    for pair in pairs:
        runs = sorted(
            [(t, "blue") for t in recorder.runs(pair.blue)] + [(t, "green") for t in recorder.runs(pair.green)]
        )
        ran[pair.index] = runs
        times = [t for t, _ in runs]
        for t in sorted(set(times)):
            if times.count(t) > 1:
                duplicates.append(f"pair {pair.index}: {_hms(t)} ran on {[s for u, s in runs if u == t]}")
        first_switch = min(s.started for s in pair.switches) if pair.switches else ticks[0]
        expected = sorted({ticks[0]} | {60.0 * m for m in range(int(first_switch // 60) + 1, int(last // 60) + 1)})
        for tick in expected:
            covered += 1
            if tick not in times:
                gaps.append(f"pair {pair.index}: {_hms(tick)} ran nowhere")
    errors = [f"pair {s.pair} to {s.to}: {s.error}" for p in pairs for s in p.switches if s.error]
    errors += [
        f"pair {p.index}: only {len(p.switches)} switches made"
        for p in pairs
        if len([s for s in p.switches if s.tick is not None]) < 2 and not any(s.error for s in p.switches)
    ]
    errors += recorder.errors[:3]
    core, lost, details = client.CoreV1Api(kube.api_client), 0, {}
    for p in pairs:
        sides = {p.blue: "blue", p.green: "green"}
        details[p.index] = recorder.history(sides)
        for ns, side in sides.items():
            for e in core.list_namespaced_event(ns).items:
                if e.involved_object.kind == "CronJob":
                    lost += e.reason == "UnexpectedJob"
                    when = e.last_timestamp or e.event_time or e.first_timestamp
                    details[p.index].append(f"{side} event {when:%H:%M:%S} {e.reason}: {e.message}")
    return Outcome(pairs, ticks, ran, duplicates, gaps, errors, covered, lost, time.time() - began, details)


def test_handover_drill_on_the_real_cronjob_controller_has_no_duplicate_and_no_gap(kube) -> None:
    outcome = run_drill(kube)
    print(outcome.summary())
    for s in outcome.switches:
        print(
            f"  pair {s.pair} → {s.to} asked {s.offset:g} s before {_hms(s.tick)}, started "
            f"{s.tick - s.started:.2f} s before, took {s.took:.1f} s, refused {s.refused}×"
            f"{' ' + s.error if s.error else ''}"
        )
    for index, runs in outcome.runs.items():
        print(f"  pair {index}: " + ", ".join(f"{_hms(t)} {side}" for t, side in runs))
    for pair in outcome.pairs:  # the story of each pair that went wrong
        if any(f"pair {pair.index}:" in line for line in outcome.duplicates + outcome.gaps + outcome.errors):
            print(f"pair {pair.index} ({pair.blue} → {pair.green}):")
            for s in pair.switches:
                print(f"  → {s.to} at {s.offset:g} s before {_hms(s.tick) if s.tick else 'setup'}:")
                print("\n".join(f"    {line}" for line in s.log))
            print("\n".join(f"  {line}" for line in outcome.details[pair.index]))
    assert not outcome.errors, outcome.errors
    assert not outcome.duplicates, outcome.duplicates
    assert not outcome.gaps, outcome.gaps
    assert len(outcome.switches) >= 20
    assert any(s.refused for s in outcome.switches), "no switch met a running Job"
