"""Dependencies where the workloads declare them: env values and the ConfigMap values their env
refers to (configMapKeyRef, envFrom) that name another discovered Service's DNS name. Each one is a
guess; the spec's rules then drop what a wave could not hold (a job waiting for an exposed service,
a cycle), with the reason. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from include.slow_injection.discover.classify import Discovered, selects
from include.slow_injection.discover.inventory import Inventory
from include.slow_injection.kubernetes.fargate_fit import pod_template

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*:)+//")  # http://, jdbc:postgresql://
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_SEPARATORS = re.compile(r"[\s,;\"'()\[\]{}<>=]+")


@dataclass
class Guess:
    source: Discovered
    target: Discovered
    where: list[str] = field(default_factory=list)  # "env ORDERS_URL of container app = http://…"
    dropped: str = ""  # why the rules dropped it; empty: kept

    def __str__(self) -> str:
        return f"{self.source.namespace}/{self.source.spec_name} → {self.target.namespace}/{self.target.spec_name}"


@dataclass(frozen=True)
class Unresolved:
    """A Service name the workload refers to that leads to no migrated workload."""

    source: Discovered
    service: str
    where: str


def env_values(obj: dict[str, Any], config_maps: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(where it was found, value) for every env value a workload's containers get, including the
    ConfigMap values named by configMapKeyRef and envFrom."""
    pod = (pod_template(obj) or {}).get("spec") or {}
    for c in list(pod.get("initContainers") or []) + list(pod.get("containers") or []):
        container = c.get("name", "?")
        for env in c.get("env") or []:
            if isinstance(env.get("value"), str):
                yield f"env {env.get('name')} of container {container}", env["value"]
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
            value = ((config_maps.get(ref.get("name") or "") or {}).get("data") or {}).get(ref.get("key") or "")
            if isinstance(value, str):
                yield (
                    (f"ConfigMap {ref['name']} key {ref['key']} (env {env.get('name')} of container {container})"),
                    value,
                )
        for source in c.get("envFrom") or []:
            name = (source.get("configMapRef") or {}).get("name") or ""
            for key, value in sorted(((config_maps.get(name) or {}).get("data") or {}).items()):
                if isinstance(value, str):
                    yield f"ConfigMap {name} key {key} (envFrom of container {container})", value


def hosts_in(value: str) -> list[str]:
    """Host names a value mentions: bare names, host:port, URLs (scheme, user@, port, path dropped)."""
    hosts = []
    for token in _SEPARATORS.split(value.strip().lower()):
        token = _SCHEME.sub("", token)
        token = token.rsplit("@", 1)[-1]
        token = re.split(r"[/?#]", token, maxsplit=1)[0]
        token = re.sub(r":\d*$", "", token).rstrip(".")
        if token and _HOST.match(token):
            hosts.append(token)
    return hosts


def dns_names(service: str, namespace: str) -> list[str]:
    return [f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def infer(inventory: Inventory, discovered: list[Discovered]) -> tuple[list[Guess], list[Unresolved]]:
    qualified: dict[str, tuple[str, str]] = {}  # DNS name → (namespace, Service name)
    for svc in inventory.of("services"):
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        for dns in dns_names(name, ns):
            qualified[dns] = (ns, name)
    by_service: dict[tuple[str, str], list[Discovered]] = {}
    for svc in inventory.of("services"):
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        by_service[(ns, name)] = [d for d in discovered if d.kind == "Deployment" and selects(svc, d.obj)]
    local = {(ns, name) for ns, name in by_service}

    guesses: dict[tuple[tuple[str, str], tuple[str, str]], Guess] = {}
    unresolved: list[Unresolved] = []
    for d in discovered:
        config_maps = {c["metadata"]["name"]: c for c in inventory.of("configmaps", d.namespace)}
        for where, value in env_values(d.obj, config_maps):
            for host in hosts_in(value):
                target_service = qualified.get(host) or ((d.namespace, host) if (d.namespace, host) in local else None)
                if target_service is None:
                    continue
                found = f"{where} = {value}"
                targets = [t for t in by_service[target_service] if t is not d]
                if not by_service[target_service]:
                    unresolved.append(Unresolved(d, f"{target_service[0]}/{target_service[1]}", found))
                for target in targets:
                    guess = guesses.setdefault((d.key, target.key), Guess(d, target))
                    if found not in guess.where:
                        guess.where.append(found)
    return [guesses[k] for k in sorted(guesses)], unresolved


def apply_rules(guesses: list[Guess], emitted_exposure: dict[tuple[str, str], str]) -> None:
    """Mark the guesses a wave spec could not hold as dropped, with the reason (in order, so the
    result is deterministic): a scheduled job waiting for an exposed service, or a cycle."""
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for guess in guesses:
        source, target = guess.source.key, guess.target.key
        if emitted_exposure[source] == "scheduled" and emitted_exposure[target] == "exposed":
            guess.dropped = (
                f"scheduled jobs migrate before exposed services (spec rule) and "
                f"{guess.target.spec_name} is drafted as exposed; the job keeps calling it where it runs"
            )
            continue
        path = _path(edges, target, source)
        if path:
            cycle = " → ".join(n for _, n in [source, *path])
            guess.dropped = f"it would close the dependency cycle {cycle}"
            continue
        edges.setdefault(source, set()).add(target)


def _path(
    edges: dict[tuple[str, str], set[tuple[str, str]]], start: tuple[str, str], goal: tuple[str, str]
) -> list[tuple[str, str]]:
    """A dependency path start → … → goal, or []."""
    stack, seen = [(start, [start])], {start}
    while stack:
        node, trail = stack.pop()
        if node == goal:
            return trail
        for nxt in sorted(edges.get(node, ())):
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, trail + [nxt]))
    return []
