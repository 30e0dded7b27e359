"""Right-sizing green's pods on EKS Fargate: what Fargate provisions for a pod's requests, what that
costs, and what would be cheaper or safer given the observed usage. Pure: no I/O.

Fargate's sizing rules (AWS, "Understand Fargate Pod configuration details",
https://docs.aws.amazon.com/eks/latest/userguide/fargate-pod-configuration.html, checked 2026-11-27):
- the long-running containers' requests are summed, the largest init container's request is taken, and
  the larger of the two is the pod's request;
- Fargate adds 256 MB of memory for the Kubernetes components (kubelet, kube-proxy, containerd);
- it rounds up to the closest vCPU/memory combination of FARGATE_SIZES; no request at all gets the
  smallest, 0.25 vCPU 0.5 GB. The page's own example: 1 vCPU / 8 GB requested → 2 vCPU / 9 GB (no 1-vCPU
  size holds 8 GB + 256 MB);
- the pod's `CapacityProvisioned` annotation says what was provisioned, e.g. "0.25vCPU 0.5GB".
Kubernetes copies a container's limit into its missing request (API defaulting), so a limit stands in
for a request here. Fargate's "GB" are GiB and its "256 MB" MiB (ECS gives the same sizes in MiB: 512, 1024…).
Sidecars (init containers with restartPolicy Always) run for the pod's life: counted as long-running
(the Fargate page predates them; an assumption).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MIB = 1024**2
GIB = 1024**3
OVERHEAD = 256 * MIB  # Fargate's memory for kubelet, kube-proxy and containerd

# AWS Fargate on-demand list prices for Linux/x86 in us-east-1 (N. Virginia), per hour: $0.04048 per
# vCPU and $0.004445 per GB (aws.amazon.com/fargate/pricing, as quoted by 2026 pricing guides). Other
# regions, ARM, Spot and Savings Plans differ; the ratios between sizes matter more than the dollars.
PRICE_REGION = "us-east-1"
PRICE_PER_VCPU_HOUR = 0.04048
PRICE_PER_GB_HOUR = 0.004445
PRICE_NOTE = (
    f"AWS list prices, {PRICE_REGION}, Linux/x86, on-demand: ${PRICE_PER_VCPU_HOUR} per vCPU-hour, "
    f"${PRICE_PER_GB_HOUR} per GB-hour (other regions, Spot and Savings Plans differ)"
)

HEADROOM = 1.2  # a right-sized request covers usage p95 × this (spikes above p95, GC, start-up)
MEMORY_NEAR_LIMIT = 0.9  # memory p95 above this share of the request: on Fargate request = limit, OOM is near

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$")
_SUFFIX: dict[str, int | Decimal] = {
    "": 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_CAPACITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*vCPU\s+(\d+(?:\.\d+)?)\s*GB\s*$")


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity ("250m", "1.5", "512Mi", "2G", "1e3") as a plain number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r} (e.g. 250m, 1, 512Mi, 2Gi, 1G)")
    number, suffix, exponent = match.groups()
    try:
        scale = Decimal(10) ** int(exponent) if exponent is not None else Decimal(_SUFFIX[suffix or ""])
        return float(Decimal(number) * scale)
    except (InvalidOperation, OverflowError) as err:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from err


@dataclass(frozen=True)
class FargateSize:
    vcpu: float
    memory_gib: float

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)

    @property
    def hourly_cost(self) -> float:
        return self.vcpu * PRICE_PER_VCPU_HOUR + self.memory_gib * PRICE_PER_GB_HOUR

    @property
    def most_memory_request(self) -> int:
        """The largest memory request this size still holds (its memory less Fargate's 256 MB)."""
        return self.memory_bytes - OVERHEAD

    def __str__(self) -> str:  # as the CapacityProvisioned annotation spells it
        return f"{self.vcpu:g}vCPU {self.memory_gib:g}GB"


def _sizes() -> list[FargateSize]:
    table: list[tuple[float, Iterable[float]]] = [
        (0.25, [0.5, 1, 2]),
        (0.5, [1, 2, 3, 4]),
        (1, range(2, 9)),
        (2, range(4, 17)),
        (4, range(8, 31)),
        (8, range(16, 61, 4)),
        (16, range(32, 121, 8)),
    ]
    return [FargateSize(float(cpu), float(mem)) for cpu, mems in table for mem in mems]


FARGATE_SIZES = _sizes()  # by vCPU, then memory: the first that fits is the cheapest
LARGEST = FARGATE_SIZES[-1]


def fargate_size(cpu: float, memory: float, overhead: float = OVERHEAD) -> FargateSize | None:
    """The size Fargate provisions for a pod requesting `cpu` cores and `memory` bytes; None if none fits."""
    needed = memory + overhead
    return next((s for s in FARGATE_SIZES if s.vcpu >= cpu - 1e-9 and s.memory_bytes >= needed - 0.5), None)


def parse_capacity(text: Any) -> FargateSize | None:
    """The CapacityProvisioned annotation ("0.25vCPU 0.5GB") as a size; None when absent."""
    if text is None or text == "":
        return None
    match = _CAPACITY.match(str(text))
    if not match:
        raise ValueError(f"CapacityProvisioned annotation {text!r}: expected like '0.25vCPU 0.5GB'")
    return FargateSize(float(match.group(1)), float(match.group(2)))


# --- a pod's request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    cpu: float  # cores
    memory: float  # bytes

    def __str__(self) -> str:
        return f"{cpu_text(self.cpu)} / {memory_text(self.memory)}"


def pod_facts(pod: dict[str, Any]) -> dict[str, Any]:
    """What right-sizing needs of a Pod object (JSON-safe): its containers' requests and limits and
    Fargate's CapacityProvisioned annotation."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}

    def container(c: dict[str, Any]) -> dict[str, Any]:
        res = c.get("resources") or {}
        out = {
            "name": c.get("name"),
            "requests": dict(res.get("requests") or {}),
            "limits": dict(res.get("limits") or {}),
        }
        if c.get("restartPolicy"):
            out["restart_policy"] = c["restartPolicy"]
        return out

    return {
        "name": meta.get("name"),
        "phase": (pod.get("status") or {}).get("phase"),
        "containers": [container(c) for c in spec.get("containers") or []],
        "init_containers": [container(c) for c in spec.get("initContainers") or []],
        "capacity_provisioned": (meta.get("annotations") or {}).get("CapacityProvisioned"),
    }


def _container_request(c: dict[str, Any], resource: str) -> float:
    value = (c.get("requests") or {}).get(resource)
    if value is None:
        value = (c.get("limits") or {}).get(resource)  # Kubernetes defaults a missing request to the limit
    return 0.0 if value is None else parse_quantity(value)


def pod_request(facts: dict[str, Any]) -> Resources:
    """The pod's request as Fargate sizes it: max(sum of long-running containers, largest init container)."""
    inits = [c for c in facts.get("init_containers") or [] if c.get("restart_policy") != "Always"]
    running = list(facts.get("containers") or []) + [
        c for c in facts.get("init_containers") or [] if c.get("restart_policy") == "Always"
    ]
    values = []
    for resource in ("cpu", "memory"):
        summed = sum(_container_request(c, resource) for c in running)
        values.append(max([summed] + [_container_request(c, resource) for c in inits]))
    return Resources(*values)


# --- advice ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Observed usage of one green pod: 95th percentiles over the run (None: not measured)."""

    cpu_p95: float | None = None  # cores
    memory_p95: float | None = None  # bytes

    @property
    def known(self) -> bool:
        return self.cpu_p95 is not None or self.memory_p95 is not None


@dataclass(frozen=True)
class Advice:
    kind: str  # cheaper | safer | note
    text: str


def advise(request: Resources, provisioned: FargateSize | None, usage: Usage | None = None) -> list[Advice]:
    """What would be cheaper or safer for one pod shape, with the figures. `provisioned` is what Fargate
    bills (the annotation), else None (then the rules' size is used)."""
    expected = fargate_size(request.cpu, request.memory)
    billed = provisioned or expected
    out: list[Advice] = []
    if billed is None:
        return [
            Advice(
                "safer",
                f"requests {request} exceed Fargate's largest size {LARGEST} (with its 256 MB): "
                "the pod cannot be scheduled on Fargate",
            )
        ]
    if provisioned is not None and expected is not None and provisioned != expected:
        out.append(
            Advice(
                "note",
                f"Fargate provisioned {provisioned} where its rules give {expected} for requests "
                f"{request}: the pod was sized from other requests (changed since it started?); "
                f"the figures below use what Fargate bills",
            )
        )
    if usage is not None and usage.known:
        out += _by_usage(request, billed, usage)
    else:
        out += _overhead_step(request, billed)
    return out


def _overhead_step(request: Resources, billed: FargateSize) -> list[Advice]:
    """Fargate's 256 MB pushing the pod into a dearer size than its requests alone need."""
    alone = fargate_size(request.cpu, request.memory, overhead=0)
    if alone is None or alone.hourly_cost >= billed.hourly_cost:
        return []
    trimmed = alone.most_memory_request
    return [
        Advice(
            "cheaper",
            f"requests {request} → Fargate bills {billed} because of the 256 MB it adds; "
            f"requesting {memory_text(trimmed)} ({mib(trimmed)}) memory would fit {alone}: "
            f"{_cost_change(billed, alone)} (check that the pod's memory use allows it)",
        )
    ]


def _by_usage(request: Resources, billed: FargateSize, usage: Usage) -> list[Advice]:
    cpu_need = usage.cpu_p95 * HEADROOM if usage.cpu_p95 is not None else request.cpu
    memory_need = usage.memory_p95 * HEADROOM if usage.memory_p95 is not None else request.memory
    seen = _usage_text(usage)
    risks = []
    if usage.cpu_p95 is not None and usage.cpu_p95 > request.cpu:
        risks.append(
            f"CPU p95 {cpu_text(usage.cpu_p95)} is above the request {cpu_text(request.cpu)} "
            "(on Fargate the request is the limit: the pod is throttled)"
        )
    if usage.memory_p95 is not None and usage.memory_p95 > MEMORY_NEAR_LIMIT * request.memory:
        share = f"{usage.memory_p95 / request.memory:.0%} of" if request.memory else "with no"
        risks.append(
            f"memory p95 {memory_text(usage.memory_p95)} is {share} the request "
            f"{memory_text(request.memory)} (on Fargate the request is the limit: an OOM kill is near)"
        )
    target = fargate_size(
        max(cpu_need, request.cpu) if risks else cpu_need, max(memory_need, request.memory) if risks else memory_need
    )
    if target is None:
        return [
            Advice(
                "safer",
                "; ".join(
                    risks
                    + [
                        f"p95 × {HEADROOM:g} needs more than Fargate's largest size "
                        f"{LARGEST}: split the work or leave Fargate"
                    ]
                ),
            )
        ]
    suggestion = (
        f"request {cpu_text(target.vcpu)} / {memory_text(target.most_memory_request)} "
        f"({mib(target.most_memory_request)}) memory, the most {target} holds: {_cost_change(billed, target)}"
    )
    if risks:
        return [Advice("safer", "; ".join(risks) + f"; {suggestion}")]
    if target.hourly_cost < billed.hourly_cost:
        return [
            Advice(
                "cheaper",
                f"{seen}; requests {request} → Fargate bills {billed}; p95 × {HEADROOM:g} fits {target}: {suggestion}",
            )
        ]
    return [
        Advice(
            "note",
            f"{seen} fits the requests {request} and no cheaper Fargate size than {billed} holds p95 × {HEADROOM:g}",
        )
    ]


def _usage_text(usage: Usage) -> str:
    parts = []
    if usage.cpu_p95 is not None:
        parts.append(f"CPU {cpu_text(usage.cpu_p95)}")
    if usage.memory_p95 is not None:
        parts.append(f"memory {memory_text(usage.memory_p95)}")
    return "usage p95 " + ", ".join(parts)


def _cost_change(before: FargateSize, after: FargateSize) -> str:
    change = after.hourly_cost / before.hourly_cost - 1
    return (
        f"${after.hourly_cost:.4f}/h per pod instead of ${before.hourly_cost:.4f}/h "
        f"({'+' if change > 0 else '−'}{abs(change):.0%})"
    )


# --- figures as text ---------------------------------------------------------------------------------


def cpu_text(cores: float) -> str:
    return f"{cores:.3g} vCPU" if cores >= 0.1 or cores == 0 else f"{cores * 1000:.3g}m vCPU"


def memory_text(size: float) -> str:
    return f"{size / GIB:.3g} GiB" if size >= GIB else f"{size / MIB:.4g} MiB"


def mib(size: float) -> str:
    """A memory request in Kubernetes form, rounded down to whole MiB (never above what fits)."""
    return f"{math.floor(size / MIB)}Mi"


# --- one service's pods ------------------------------------------------------------------------------


def assess(pods: list[dict[str, Any]], usage: Usage | None = None) -> list[dict[str, Any]]:
    """A service's green pods (pod_facts) grouped by shape (same requests, same CapacityProvisioned),
    each group with its figures and advice; JSON-safe. A pod that cannot be read is its own group with
    an `error`."""
    groups: dict[Any, dict[str, Any]] = {}
    for facts in pods:
        raw = facts.get("capacity_provisioned")
        try:
            request = pod_request(facts)
            provisioned = parse_capacity(raw)
        except ValueError as err:
            groups[("error", facts.get("name"))] = {
                "pods": [facts.get("name")],
                "error": f"pod {facts.get('name')}: {err}",
            }
            continue
        group = groups.setdefault(
            (request, raw), {"pods": [], "request": request, "provisioned": provisioned, "raw": raw}
        )
        group["pods"].append(facts.get("name"))
    return [g if "error" in g else _group(g, usage) for g in groups.values()]


def _group(group: dict[str, Any], usage: Usage | None) -> dict[str, Any]:
    request, provisioned = group["request"], group["provisioned"]
    expected = fargate_size(request.cpu, request.memory)
    billed = provisioned or expected
    advice = advise(request, provisioned, usage)
    if provisioned is None:
        advice.insert(
            0,
            Advice(
                "note",
                "no CapacityProvisioned annotation (not on Fargate, or not scheduled yet): "
                "the figures use Fargate's rules",
            ),
        )
    return {
        "pods": sorted(str(p) for p in group["pods"]),
        "error": None,
        "requests": {"cpu": request.cpu, "memory": request.memory},
        "requests_text": str(request),
        "expected": str(expected) if expected else None,
        "provisioned": group["raw"],
        "billed": str(billed) if billed else None,
        "hourly_cost": round(billed.hourly_cost, 6) if billed else None,
        "advice": [{"kind": a.kind, "text": a.text} for a in advice],
    }


def p95(values: list[float]) -> float | None:
    """95th percentile (linear interpolation between the closest ranks); None for no values."""
    ordered = sorted(v for v in values if math.isfinite(v))
    if not ordered:
        return None
    rank = 0.95 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
