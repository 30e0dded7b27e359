"""Load wave specs from include/waves/: one YAML file per wave, `_defaults.yaml` merged under each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from include.slow_injection import registry
from include.slow_injection.spec.errors import SpecError
from include.slow_injection.spec.messages import describe_errors, join_path
from include.slow_injection.spec.models import DriverRef, MetricGate, Wave
from include.slow_injection.spec.yaml_source import load_yaml_file

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WAVES_DIR = PROJECT_ROOT / "include" / "waves"
DEFAULTS_FILE = "_defaults.yaml"


def waves_dir() -> Path:
    return Path(os.environ.get("SLOW_INJECTION_WAVES_DIR", DEFAULT_WAVES_DIR))


def display_path(path: Path) -> str:
    resolved = path.resolve()
    for base in (PROJECT_ROOT, Path.cwd()):
        try:
            return str(resolved.relative_to(base))
        except ValueError:
            continue
    return str(path)


def spec_files(directory: Path) -> list[Path]:
    """Wave files in stable order; names starting with '_' or '.' are not waves."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(("_", ".")) and p.is_file()
    )


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; any other value in `override` replaces the base value."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def _defined_at(data: Any, path: str) -> bool:
    """Whether a dotted/indexed field path exists in raw YAML data."""
    current = data
    for token in path.replace("[", ".[").split("."):
        if not token:
            continue
        if token.startswith("["):
            index = int(token[1:-1])
            if not isinstance(current, list) or index >= len(current):
                return False
            current = current[index]
        else:
            if not isinstance(current, dict) or token not in current:
                return False
            current = current[token]
    return True


def load_defaults(directory: Path) -> tuple[dict[str, Any], str | None]:
    path = directory / DEFAULTS_FILE
    if not path.exists():
        return {}, None
    shown = display_path(path)
    data = load_yaml_file(path, shown)
    if data is None:
        return {}, shown
    if not isinstance(data, dict):
        raise SpecError(shown, "", "must hold a mapping of wave fields shared by every wave")
    return data, shown


def driver_refs(wave: Wave) -> Iterator[tuple[str, str, DriverRef]]:
    for env in ("blue", "green"):
        yield f"environments.{env}.platform", "platform", getattr(wave.environments, env).platform
    for i, svc in enumerate(wave.services):
        if svc.router is not None:
            yield f"services[{i}].router", "router", svc.router
        for j, gate in enumerate(svc.gates):
            yield f"services[{i}].gates[{j}].source", "metric_source", gate.source
        for j, check in enumerate(svc.health_checks):
            yield f"services[{i}].health_checks[{j}].check", "health_check", check.check
    for phase in ("parallel_operation", "validation", "full_transition", "release_monitoring"):
        monitoring = getattr(wave, phase)
        for j, gate in enumerate(monitoring.gates):
            yield f"{phase}.gates[{j}].source", "metric_source", gate.source
        for j, check in enumerate(monitoring.health_checks):
            yield f"{phase}.health_checks[{j}].check", "health_check", check.check
    if wave.validation.parity is not None:
        yield "validation.parity.source", "metric_source", wave.validation.parity.source
    if wave.report.source is not None:
        yield "report.source", "metric_source", wave.report.source
    if wave.validation.data_sync is not None:
        for j, ref in enumerate(wave.validation.data_sync.checks):
            yield f"validation.data_sync.checks[{j}]", "data_sync", ref
    for i, migration in enumerate(wave.data_migration):
        yield f"data_migration[{i}].replication", "data_replication", migration.replication
    for i, note in enumerate(wave.notifications):
        yield f"notifications[{i}].notifier", "notifier", note.notifier


def driver_settings_errors(kind: str, ref: DriverRef) -> list[tuple[str, str]]:
    """Check a DriverRef's extra keys against its driver's Settings; (relative path, reason) pairs."""
    try:
        cls = registry.driver_class(kind, ref.type)
    except registry.UnknownDriver as err:
        return [("type", str(err))]
    missing = registry.missing_methods(kind, cls)
    if missing:
        return [
            (
                "type",
                f"driver {ref.type!r} does not implement the {kind.replace('_', ' ')} port: no {', '.join(missing)}",
            )
        ]
    settings_model: type[BaseModel] = cls.Settings
    try:
        settings_model.model_validate(ref.settings)
    except ValidationError as err:
        return describe_errors(err, settings_model)
    return []


def metric_gates(wave: Wave) -> Iterator[tuple[str, MetricGate]]:
    for i, svc in enumerate(wave.services):
        for j, gate in enumerate(svc.gates):
            yield f"services[{i}].gates[{j}]", gate
    for phase in ("parallel_operation", "validation", "full_transition", "release_monitoring"):
        for j, gate in enumerate(getattr(wave, phase).gates):
            yield f"{phase}.gates[{j}]", gate


def gate_condition_errors(wave: Wave) -> list[tuple[str, str]]:
    """A source whose reading only means one thing (alarms in ALARM: pass below 1) fixes the gate's
    condition; any other comparator or threshold would let a firing alarm pass."""
    problems = []
    for path, gate in metric_gates(wave):
        try:
            fixed = getattr(registry.driver_class("metric_source", gate.source.type), "GATE_CONDITION", None)
        except registry.UnknownDriver:
            continue
        if fixed and (gate.comparator, gate.threshold) != fixed:
            problems.append(
                (
                    f"{path}.comparator",
                    f"a {gate.source.type} gate must be `comparator: {fixed[0]}, "
                    f"threshold: {fixed[1]:g}` (its value counts what must be "
                    f"zero), got {gate.comparator} {gate.threshold:g}",
                )
            )
    return problems


def parse_wave(
    data: Any,
    shown: str,
    defaults: dict[str, Any] | None = None,
    defaults_shown: str | None = None,
    expected_id: str | None = None,
) -> Wave:
    """Validate raw YAML data into a Wave, or raise SpecError with every problem found."""
    if not isinstance(data, dict):
        raise SpecError(shown, "", "must hold a mapping of wave fields (id, owner, environments, services, …)")
    merged = deep_merge(defaults or {}, data)
    try:
        wave = Wave.model_validate(merged)
    except ValidationError as err:
        problems = []
        for path, reason in describe_errors(err, Wave):
            if defaults_shown and path and not _defined_at(data, path) and _defined_at(defaults, path):
                reason += f" (value from {defaults_shown})"
            problems.append((path, reason))
        raise SpecError.of(shown, problems) from None
    problems = [
        (join_path(path, sub), reason)
        for path, kind, ref in driver_refs(wave)
        for sub, reason in driver_settings_errors(kind, ref)
    ]
    problems += gate_condition_errors(wave)
    if expected_id is not None and wave.id != expected_id:
        problems.append(("id", f"must match the file name {expected_id!r} (one wave per file), got {wave.id!r}"))
    if problems:
        raise SpecError.of(shown, problems)
    return wave


def load_wave(path: Path, defaults: dict[str, Any] | None = None, defaults_shown: str | None = None) -> Wave:
    shown = display_path(path)
    if defaults is None:
        defaults, defaults_shown = load_defaults(path.parent)
    return parse_wave(load_yaml_file(path, shown), shown, defaults, defaults_shown, expected_id=path.stem)


@dataclass
class LoadResult:
    waves: list[Wave] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)


def load_waves(directory: Path | None = None) -> LoadResult:
    """Every wave in a folder: valid ones in file order, broken ones as errors (never raised)."""
    directory = directory or waves_dir()
    result = LoadResult()
    if not directory.is_dir():
        result.errors.append(SpecError(display_path(directory), "", "waves folder does not exist"))
        return result
    try:
        defaults, defaults_shown = load_defaults(directory)
    except SpecError as err:
        result.errors.append(err)
        return result
    paths = {}
    for path in spec_files(directory):
        try:
            wave = load_wave(path, defaults, defaults_shown)
        except SpecError as err:
            result.errors.append(err)
            continue
        result.waves.append(wave)
        paths[wave.id] = path
    _check_chains(result, paths)
    return result


def _check_chains(result: LoadResult, paths: dict[str, Path]) -> None:
    """`schedule.after` names waves of the same folder, without a cycle; a broken chain drops the wave."""
    known = {w.id for w in result.waves}
    after = {w.id: list(w.schedule.after) if w.schedule else [] for w in result.waves}
    broken: dict[str, str] = {}
    for wave_id, earlier in after.items():
        unknown = [e for e in earlier if e not in known]
        if unknown:
            broken[wave_id] = (
                f"unknown or broken wave {', '.join(map(repr, unknown))} "
                f"(waves here: {', '.join(sorted(known)) or '-'})"
            )
    for wave_id in after:
        seen, current = set(), list(after[wave_id])
        while current:
            nxt = current.pop()
            if nxt == wave_id:
                broken.setdefault(wave_id, "waits for itself: the waves' schedule.after form a cycle")
                break
            if nxt in after and nxt not in seen:
                seen.add(nxt)
                current += after[nxt]
    for wave_id, reason in broken.items():
        result.errors.append(SpecError(display_path(paths[wave_id]), "schedule.after", reason))
    result.waves = [w for w in result.waves if w.id not in broken]
