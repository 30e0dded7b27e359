"""Configuration drift between blue's and green's live objects, minus what the spec declared.

Pure: the caller reads both sides (workload, the ConfigMaps/Secrets its env refers to, the Services
of interest) and passes them in as dicts. Each side becomes a flat fingerprint {path: value}; blue's
is taken of `to_green(blue)`, so the declared Fargate transforms never count as drift. Secret data
is hashed before it enters a fingerprint: no value ever leaves this module, only `sha256:<hex>`.

Paths (what `drift.ignore` / `drift.expect` in a spec name):
  containers[NAME].image                     initContainers[NAME]... likewise
  containers[NAME].env.VAR                   literal value, or the reference ("secretKeyRef db/password")
  containers[NAME].envFrom                   "configMapRef app-env, secretRef app-secrets"
  containers[NAME].resources.requests.cpu    and .limits.*; .resources.claims (names, comma-separated)
  containers[NAME].livenessProbe.httpGet.path   readinessProbe, startupProbe likewise
  configMaps[NAME].KEY                       referenced ConfigMap data (long values hashed)
  secrets[NAME].KEY                          referenced Secret data, always sha256
  services[NAME].ports[PORT-NAME or NUMBER].targetPort   protocol, port, appProtocol
A path also covers everything under it ("containers[app].env" ignores every env var of app).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from include.slow_injection.kubernetes.fargate_fit import env_references, pod_template
from include.slow_injection.kubernetes.transforms import to_green

ROOTS = ("containers", "initContainers", "configMaps", "secrets", "services")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
MISSING, PRESENT = "missing", "present"  # whether a referenced object exists on that side
SHOWN_HEX = 12
LONG_VALUE = 80  # ConfigMap values longer than this are compared and shown by hash


@dataclass(frozen=True)
class Difference:
    """One path whose value differs; None = absent on that side. Secret values are hashes."""

    path: str
    blue: Any
    green: Any
    expected: Any = None  # the spec's `expect` for this path, when green missed it

    def __str__(self) -> str:
        out = f"{self.path}: blue {_show(self.blue)}, green {_show(self.green)}"
        return out + (f" (expected {_show(self.expected)})" if self.expected is not None else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "blue": _shown(self.blue),
            "green": _shown(self.green),
            **({"expected": _shown(self.expected)} if self.expected is not None else {}),
        }


@dataclass(frozen=True)
class Transforms:
    """What `to_green` changes by design (the platform driver's settings)."""

    namespace: str
    add_labels: dict[str, str] = field(default_factory=dict)
    strip_scheduling: bool = True
    requests_equal_limits: bool = True


@dataclass(frozen=True)
class Declared:
    """The spec's declared differences (Workload.drift)."""

    ignore: tuple[str, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, workload: dict[str, Any]) -> Declared:
        rules = workload.get("drift") or {}
        return cls(tuple(rules.get("ignore") or ()), dict(rules.get("expect") or {}))


@dataclass
class Side:
    """One environment's live objects: the workload, and by name the ConfigMaps/Secrets it refers to
    (None = does not exist) and the Services to compare."""

    workload: dict[str, Any]
    config_maps: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    services: dict[str, dict[str, Any] | None] = field(default_factory=dict)


def compare(blue: Side, green: Side, transforms: Transforms, declared: Declared = Declared()) -> list[Difference]:
    """Differences between blue (as `to_green` would copy it) and green, minus the declared ones."""
    copied = to_green(
        blue.workload,
        transforms.namespace,
        transforms.add_labels,
        transforms.strip_scheduling,
        transforms.requests_equal_limits,
    )
    as_copied = Side(copied, blue.config_maps, blue.secrets, blue.services)
    return differences(fingerprint(as_copied), fingerprint(green), declared)


def differences(blue: dict[str, Any], green: dict[str, Any], declared: Declared = Declared()) -> list[Difference]:
    """Compare two fingerprints: `ignore` drops paths (and what is under them); `expect` replaces
    "same as blue" by "equal to the expected value" for its paths."""
    out = []
    for path in sorted(set(blue) | set(green)):
        if _covered(path, declared.ignore) or path in declared.expect:
            continue
        if blue.get(path) != green.get(path):
            out.append(Difference(path, _shown(blue.get(path)), _shown(green.get(path))))
    for path, wanted in sorted(declared.expect.items()):
        if not _matches(green.get(path), wanted):
            out.append(Difference(path, _shown(blue.get(path)), _shown(green.get(path)), wanted))
    missing = [d.path for d in out if MISSING in (d.blue, d.green)]
    return [d for d in out if not any(_under(d.path, m) for m in missing)]  # one line per missing object


def fingerprint(side: Side) -> dict[str, Any]:
    """{path: value} of everything drift compares on one side; secret data only as sha256."""
    out: dict[str, Any] = {}
    pod = (pod_template(side.workload) or {}).get("spec") or {}
    for group in ("initContainers", "containers"):
        for c in pod.get(group) or []:
            _container(out, f"{group}[{c.get('name')}]", c)
    for name, cm in side.config_maps.items():
        _data(out, f"configMaps[{name}]", cm, secret=False)
    for name, secret in side.secrets.items():
        _data(out, f"secrets[{name}]", secret, secret=True)
    for name, svc in side.services.items():
        out[f"services[{name}]"] = MISSING if svc is None else PRESENT
        if svc is None:
            continue
        for port in (svc.get("spec") or {}).get("ports") or []:
            key = f"services[{name}].ports[{port.get('name') or port.get('port')}]"
            for attr in ("port", "targetPort", "protocol", "appProtocol"):
                if port.get(attr) is not None:
                    out[f"{key}.{attr}"] = port[attr]
    return out


def references(workload: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(ConfigMap names, Secret names) the workload's env and envFrom refer to."""
    secrets, config_maps = env_references((pod_template(workload) or {}).get("spec") or {})
    return sorted(config_maps), sorted(secrets)


def selects(service: dict[str, Any], workload: dict[str, Any]) -> bool:
    """Whether a Service's selector picks the workload's pods."""
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = ((pod_template(workload) or {}).get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _container(out: dict[str, Any], prefix: str, c: dict[str, Any]) -> None:
    out[f"{prefix}.image"] = c.get("image")
    for e in c.get("env") or []:  # a repeated name: the last one wins, as in Kubernetes
        out[f"{prefix}.env.{e.get('name')}"] = e["value"] if "value" in e else _reference(e.get("valueFrom") or {})
    if c.get("envFrom"):
        out[f"{prefix}.envFrom"] = ", ".join(_env_from(e) for e in c["envFrom"])
    for kind, values in (c.get("resources") or {}).items():
        if isinstance(values, list):  # `claims` (dynamic resource allocation): the claims' names
            out[f"{prefix}.resources.{kind}"] = ", ".join(str((v or {}).get("name")) for v in values)
            continue
        for resource, quantity in (values or {}).items():
            out[f"{prefix}.resources.{kind}.{resource}"] = str(quantity)
    for probe in PROBES:
        if c.get(probe):
            _flatten(out, f"{prefix}.{probe}", c[probe])


def _reference(source: dict[str, Any]) -> str:
    for kind, ref in sorted(source.items()):
        ref = ref or {}
        if kind in ("configMapKeyRef", "secretKeyRef"):
            return f"{kind} {ref.get('name')}/{ref.get('key')}" + (" (optional)" if ref.get("optional") else "")
        if kind == "fieldRef":
            return f"fieldRef {ref.get('fieldPath')}"
        if kind == "resourceFieldRef":
            return f"resourceFieldRef {ref.get('containerName') or ''}/{ref.get('resource')}"
        return f"{kind} {json.dumps(ref, sort_keys=True)}"
    return "valueFrom (empty)"


def _env_from(e: dict[str, Any]) -> str:
    prefix = f" (prefix {e['prefix']})" if e.get("prefix") else ""
    for kind in ("configMapRef", "secretRef"):
        if kind in e:
            return f"{kind} {(e[kind] or {}).get('name')}{prefix}"
    return json.dumps(e, sort_keys=True)


def _data(out: dict[str, Any], prefix: str, obj: dict[str, Any] | None, secret: bool) -> None:
    out[prefix] = MISSING if obj is None else PRESENT
    if obj is None:
        return
    for key, value in (obj.get("data") or {}).items():
        if secret:
            out[f"{prefix}.{key}"] = sha256(_decoded(value))
        else:
            text = str(value)
            out[f"{prefix}.{key}"] = text if len(text) <= LONG_VALUE and "\n" not in text else sha256(text.encode())
    for key, value in (obj.get("binaryData") or {}).items():
        out[f"{prefix}.{key}"] = sha256(_decoded(value))


def _decoded(value: Any) -> bytes:
    """A Secret's data as the pod sees it (base64-decoded), so equal content hashes equal."""
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        return str(value).encode()


def _flatten(out: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(out, f"{prefix}.{key}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(out, f"{prefix}[{i}]", item)
    else:
        out[prefix] = value


def _under(path: str, parent: str) -> bool:
    return path != parent and path.startswith(parent) and path[len(parent)] in ".["


def _covered(path: str, ignored: tuple[str, ...]) -> bool:
    return any(path == i or _under(path, i) for i in ignored)


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, str) and wanted.startswith("sha256:") and isinstance(actual, str):
        return len(wanted) > len("sha256:") and actual.startswith(wanted)  # a hash prefix is enough
    return actual is not None and str(actual) == str(wanted)


def _shown(value: Any) -> Any:
    """Digests shortened to what people read; everything else as is."""
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[: len("sha256:") + SHOWN_HEX]
    return value


def _show(value: Any) -> str:
    return "absent" if value is None else str(value)
