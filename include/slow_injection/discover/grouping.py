"""Discovered services into ordered draft waves, one namespace per wave. Pure and deterministic.

Order: scheduled jobs first, then internal services, then user-facing (exposed) ones; a service that
depends on a later kind moves up to that kind's stage. Within a stage, namespaces go in dependency
order (then by name), services in dependency order (then by name), cut into waves of at most
`max_per_wave`, the smaller waves first. A dependency thus lands in the same or an earlier wave.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from include.slow_injection.discover.classify import Discovered
from include.slow_injection.discover.dependencies import Guess

STAGES = {"scheduled": 0, "internal": 1, "exposed": 2}
_ID_MAX = 63


@dataclass
class DraftWave:
    number: int
    namespace: str
    services: list[Discovered]

    @property
    def id(self) -> str:
        return f"draft-{self.number:02d}-{self.namespace}"[:_ID_MAX].rstrip("-_")

    @property
    def file_name(self) -> str:
        return f"{self.id}.yaml"


def group(discovered: list[Discovered], guesses: list[Guess], max_per_wave: int) -> list[DraftWave]:
    if max_per_wave < 1:
        raise ValueError("max_per_wave must be at least 1")
    kept = [g for g in guesses if not g.dropped]
    deps: dict[tuple[str, str], list[Discovered]] = {d.key: [] for d in discovered}
    for g in kept:
        deps[g.source.key].append(g.target)
    stage: dict[tuple[str, str], int] = {}

    def stage_of(d: Discovered) -> int:  # kept dependencies are acyclic (dependencies.apply_rules)
        if d.key not in stage:
            stage[d.key] = max([STAGES[d.classified]] + [stage_of(t) for t in deps[d.key]])
        return stage[d.key]

    groups: dict[tuple[int, str], list[Discovered]] = {}
    for d in sorted(discovered, key=lambda d: d.key):
        groups.setdefault((stage_of(d), d.namespace), []).append(d)
    group_of = {d.key: key for key, members in groups.items() for d in members}
    group_deps = {
        key: {group_of[t.key] for d in members for t in deps[d.key]} - {key} for key, members in groups.items()
    }

    waves: list[DraftWave] = []
    for key in _ordered(group_deps):
        members = groups[key]
        inside = {d.key: [t.key for t in deps[d.key] if group_of[t.key] == key] for d in members}
        by_key = {d.key: d for d in members}
        ordered = [by_key[k] for k in _ordered({k: set(v) for k, v in inside.items()})]
        for size in chunk_sizes(len(ordered), max_per_wave):
            waves.append(DraftWave(len(waves) + 1, key[1], ordered[:size]))
            ordered = ordered[size:]
    return waves


def chunk_sizes(n: int, limit: int) -> list[int]:
    """Balanced sizes of at most `limit`, smallest first: 7 by 5 → [3, 4]."""
    if n == 0:
        return []
    count = math.ceil(n / limit)
    base, extra = divmod(n, count)
    return [base] * (count - extra) + [base + 1] * extra


def _ordered(deps: dict) -> list:
    """Topological order (dependencies first), ties by key; a cycle is broken at its smallest key."""
    waiting = {k: set(v) & set(deps) for k, v in deps.items()}
    done: list = []
    ready = [k for k, v in waiting.items() if not v]
    heapq.heapify(ready)
    while len(done) < len(waiting):
        if not ready:  # only a cycle is left: take its smallest member
            ready = [min(k for k in waiting if k not in done)]
        k = heapq.heappop(ready)
        if k in done:
            continue
        done.append(k)
        for other, needs in waiting.items():
            if k in needs:
                needs.discard(k)
                if not needs and other not in done:
                    heapq.heappush(ready, other)
    return done
