"""Draft wave → YAML text with review comments. Pure: the same plan renders the same text.

Placeholders validate but never pass or move anything: connections named `todo-review-*` do not
exist, so a run (dry or real) fails at the first router, platform or metric call, before any change;
the health-check URL uses the reserved `.invalid` domain, which never resolves; `dry_run: true`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from include.slow_injection.discover.classify import Discovered, NotMigrated
from include.slow_injection.discover.dependencies import Guess, Unresolved
from include.slow_injection.discover.grouping import DraftWave
from include.slow_injection.discover.inventory import Source

TODO = "TODO(review)"
PLACEHOLDER_KUBE = "todo-review-kube"
PLACEHOLDER_ROUTER = "todo-review-router"
PLACEHOLDER_METRICS = "todo-review-prometheus"
PLACEHOLDER_HEALTH_URL = "http://todo-review.invalid/healthz"
TIMESTAMP_PREFIX = "# Discovered at "
TRAFFIC_STEPS = ((5, "10m"), (25, "15m"), (50, "15m"), (100, "30m"))
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_USERINFO = re.compile(r"(://)[^/@\s]+@")


@dataclass
class Context:
    """What every draft of one discover run shares."""

    source: Source
    discovered_at: dt.datetime
    owner: str | None
    connection: str | None
    total_waves: int
    guesses: list[Guess]
    unresolved: list[Unresolved]
    not_migrated: list[NotMigrated] = field(default_factory=list)  # the ones this draft lists
    wave_of: dict[tuple[str, str], str] = field(default_factory=dict)  # service key → wave id
    schema_ref: str = "../schema/wave.schema.json"  # the JSON Schema, relative to the drafts' folder
    unreadable: list[str] = field(default_factory=list)  # what discover's credentials could not read


def render(wave: DraftWave, ctx: Context) -> str:
    lines = _header(wave, ctx)
    lines += [
        f"id: {wave.id}",
        f"description: {_s(_description(wave))}",
        f"owner: {_s(ctx.owner or 'todo-review')}" + ("" if ctx.owner else f"  # {TODO}: who owns it (--owner)"),
        "tags: [draft, discovered]",
        f"dry_run: true   # {TODO}: runs default to a dry run; keep it until a dry run has been read",
        "",
    ]
    lines += _environments(ctx)
    if any(s.classified != "scheduled" for s in wave.services):
        lines += ["", f"traffic_steps:   # {TODO}: default steps for the exposed services below"]
        lines += [f"  - {{weight: {w}, bake: {b}}}" for w, b in TRAFFIC_STEPS]
    lines += ["", "services:"]
    for svc in wave.services:
        lines += _service(svc, wave, ctx)
    return "\n".join(lines) + "\n"


def _header(wave: DraftWave, ctx: Context) -> list[str]:
    kinds = ", ".join(f"{s.kind} {s.namespace}/{s.name} ({s.classified})" for s in wave.services)
    lines = [
        "# DRAFT written by `slow-injection discover`: a human must review it before any run.",
        f"{TIMESTAMP_PREFIX}{ctx.discovered_at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} from "
        f"{_comment(ctx.source.describe())}.",
        f"# Wave {wave.number} of {ctx.total_waves}: {_comment(kinds)}.",
        "# Order: scheduled jobs, then internal services, then exposed ones; dependencies in the same or",
        "# an earlier wave. Every value discover could not know is marked TODO(review).",
        *_safety(wave, ctx),
        "# Then: `slow-injection validate FILE`, `slow-injection plan FILE`, a dry run from the trigger form.",
        "# Edit freely: discover never overwrites a draft whose text no longer matches its digest.",
    ]
    for note in ctx.unreadable:
        lines += ["#"] + ["# " + line for line in textwrap.wrap(f"Not read: {_comment(note)}.", 98)]
    if ctx.not_migrated:
        lines += ["#", "# Not migrated (no wave moves these):"]
        lines += [
            f"#   - not migrated: {n.kind} {n.namespace}/{n.name} — {_comment(n.reason)}" for n in ctx.not_migrated
        ]
    lines += [f"# yaml-language-server: $schema={ctx.schema_ref}", ""]
    return lines


def _safety(wave: DraftWave, ctx: Context) -> list[str]:
    """What stops an unreviewed draft from changing anything, said plainly."""
    if any(s.classified != "scheduled" for s in wave.services):
        return [
            "# Until reviewed, a run (dry or real) is refused at its plan step, before any change: the",
            f"# router connection {PLACEHOLDER_ROUTER} does not exist. Health URLs (.invalid) and the metric",
            f"# connection {PLACEHOLDER_METRICS} are placeholders too, so those checks can never pass.",
        ]
    if not ctx.connection:
        return [
            "# Until reviewed, a run fails at its first platform call, before any change: the connection",
            f"# {PLACEHOLDER_KUBE} does not exist.",
        ]
    return [
        f"# Scheduled jobs only, on connection {ctx.connection}: no placeholder stops a run here. Runs",
        "# default to a dry run (dry_run: true); read one before you untick it.",
    ]


def _description(wave: DraftWave) -> str:
    return (
        f"Draft from discover: {len(wave.services)} workload(s) of namespace {wave.namespace} "
        f"({', '.join(s.spec_name for s in wave.services)}); review before use."
    )


def _environments(ctx: Context) -> list[str]:
    conn = ctx.connection or PLACEHOLDER_KUBE
    todo = "" if ctx.connection else f"   # {TODO}: the Airflow connection to blue's cluster"
    return [
        "environments:",
        "  blue:",
        f"    name: eks-ec2   # {TODO}: a name for blue",
        f"    platform: {{type: kubernetes, connection: {_s(conn)}}}{todo}",
        "  green:",
        f"    name: eks-fargate   # {TODO}: a name for green; another cluster → its own connection",
        f"    platform: {{type: kubernetes, connection: {_s(conn)}, add_labels: {{compute: fargate}}}}"
        f"   # {TODO}: the labels your Fargate profile selects",
    ]


def _service(svc: Discovered, wave: DraftWave, ctx: Context) -> list[str]:
    mine = [g for g in ctx.guesses if g.source is svc]
    same_wave = [g for g in mine if not g.dropped and ctx.wave_of[g.target.key] == wave.id]
    elsewhere = [g for g in mine if not g.dropped and ctx.wave_of[g.target.key] != wave.id]
    dropped = [g for g in mine if g.dropped]
    exposure = "scheduled" if svc.classified == "scheduled" else "exposed"
    out = [f"  - name: {svc.spec_name}", f"    exposure: {exposure}   # {_comment('; '.join(svc.why))}"]
    if svc.classified == "internal":
        out += [
            "    # internal service: the spec has no exposure for in-cluster-only services (Service.exposure",
            "    # is exposed | scheduled, and a Deployment cannot move by job handover), so it is drafted",
            f"    # as exposed. {TODO}: its callers reach it by cluster DNS, which no router driver splits;",
            "    # pick a router in front of it, or decide how its traffic moves.",
        ]
    out.append(f"    description: {_s(f'{svc.kind} {svc.namespace}/{svc.name} (discovered)')}")
    if same_wave:
        out.append("    depends_on:")
        out += [f"      - {g.target.spec_name}   # guess: {_found(g)}" for g in same_wave]
    for g in elsewhere:
        out.append(
            f"    # depends on {g.target.namespace}/{g.target.spec_name} (guess, in wave "
            f"{ctx.wave_of[g.target.key]}, so not in depends_on): {_found(g)}"
        )
    for g in dropped:
        out.append(f"    # dropped guess: depends on {g.target.spec_name} ({_found(g)}): {_comment(g.dropped)}")
    for u in ctx.unresolved:
        if u.source is svc:
            out.append(
                f"    # refers to Service {u.service}, which selects no migrated workload: {_comment(_redact(u.where))}"
            )
    out.append(f"    workload: {_flow(_workload(svc))}")
    if svc.findings:
        out.append("    # Fargate preflight (fix before a real run; the preflight phase checks again):")
        out += [f"    #   - {_comment(f)}" for f in svc.findings]
    else:
        out.append("    # Fargate preflight: no findings")
    if exposure == "exposed":
        out += _exposed_parts(svc)
    else:
        out.append(f"    # {TODO}: gates that check the job's runs on green (`slow-injection plan` warns without)")
    return out + [""]


def _workload(svc: Discovered) -> dict[str, Any]:
    green_ns = f"{svc.namespace[:55]}-fargate"
    workload: dict[str, Any] = {
        "kind": svc.kind,
        "namespace": svc.namespace,
        "name": svc.name,
        "green_namespace": green_ns,
    }
    if svc.config_maps:
        workload["copy_config_maps"] = True
    if svc.services:
        workload["copy_services"] = svc.services
    return workload


def _exposed_parts(svc: Discovered) -> list[str]:
    hint = f" ({_comment(svc.probe_hint)})" if svc.probe_hint else ""
    return [
        f"    # {TODO}: the real router (alb, route53 or haproxy; see examples/aws/shop-fargate.yaml).",
        "    router: "
        + _flow(
            {
                "type": "haproxy",
                "connection": PLACEHOLDER_ROUTER,
                "backend": svc.spec_name,
                "blue_server": "blue",
                "green_server": "green",
            }
        ),
        "    health_checks:",
        "      - name: green-ready",
        f"        check: {_flow({'type': 'http', 'url': PLACEHOLDER_HEALTH_URL})}   # {TODO}: green's health URL{hint}",
        "        consecutive_successes: 3",
        "        interval: 10s",
        "        timeout: 10m",
        "    gates:",
        "      - name: error-ratio",
        f"        source: {_flow({'type': 'prometheus', 'connection': PLACEHOLDER_METRICS})}"
        f"   # {TODO}: your metric source",
        f"        # {TODO}: the query for this service's 5xx share; no data fails the gate",
        "        query: "
        + _s(
            'sum(rate(http_requests_total{service="${service}",env="${env}",code=~"5.."}[5m])) '
            '/ sum(rate(http_requests_total{service="${service}",env="${env}"}[5m]))'
        ),
        "        comparator: less_than",
        "        threshold: 0.01",
        "        interval: 1m",
        "        on_no_data: fail",
    ]


def _found(g: Guess) -> str:
    return _comment("; ".join(_redact(w) for w in g.where))


def _redact(text: str) -> str:
    """No credentials from a URL in a comment (user:password@host → ***@host), and keep it short."""
    text = _USERINFO.sub(r"\1***@", text)
    return text if len(text) <= 160 else text[:157] + "..."


def _comment(text: str) -> str:
    return " ".join(str(text).split())


def _s(value: Any) -> str:
    """A YAML scalar: plain when unambiguous, else double-quoted (JSON strings are valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        if isinstance(v, dict):
            return _flow(v)
        if isinstance(v, list):
            return "[" + ", ".join(one(x) for x in v) + "]"
        return _s(v)

    return "{" + ", ".join(f"{k}: {one(v)}" for k, v in value.items()) + "}"
