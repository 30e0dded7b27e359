"""Hostile specs aimed at the schema of a full spec (include/waves/lab-web.yaml, every field path):
wrong types, out-of-range numbers, wrong enum values, unknown keys. Every one gives a SpecError naming
the file and the field (or a valid wave that also builds into a whole DAG), never another exception.
Unsafe YAML tags are refused with a location, and a folder with broken files still gives every valid
wave's DAG whole, with one import error naming each broken file. (test_hostile_specs mutates a small
wave at random; this one walks the full spec's schema.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.slow_injection.spec import SpecError, Wave, load_wave, parse_wave
from tests.support.waves import _paths

ROOT = Path(__file__).resolve().parents[1]
FULL = yaml.safe_load((ROOT / "include" / "waves" / "lab-web.yaml").read_text())
FILE = "include/waves/lab-web.yaml"
ENUM_WORDS = ("bogus", "ROLLBACK", "", "less than", "Deployment ", "prometheus2")


PATHS = [p for p in _paths(FULL) if p]


def dotted(path: tuple) -> str:
    """("services", 1, "gates", 0, "threshold") → "services[1].gates[0].threshold" (SpecError's form)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def wrong_values(current: Any) -> st.SearchStrategy:
    """Values of the wrong type for `current`, or of its type but out of range."""
    if isinstance(current, bool):
        return st.sampled_from(["yes", 1, 0, None, [True]])
    if isinstance(current, (int, float)):
        return st.one_of(
            st.sampled_from([-1, -0.5, 10**12, 1e308, float("inf"), float("-inf"), float("nan"), True]),
            st.text(max_size=6),
            st.none(),
            st.lists(st.integers(), max_size=2),
        )
    if isinstance(current, str):
        return st.one_of(
            st.sampled_from(ENUM_WORDS),
            st.integers(),
            st.floats(allow_nan=True),
            st.booleans(),
            st.none(),
            st.lists(st.text(max_size=3), max_size=2),
            st.just({"a": 1}),
            st.just("x" * 5000),
            st.just("-1s"),
            st.just("99999999999d"),
        )
    if isinstance(current, list):
        return st.one_of(
            st.just([]), st.just("a string"), st.just({"a": 1}), st.lists(st.integers(), max_size=3), st.just([None])
        )
    if isinstance(current, dict):
        return st.one_of(st.just([]), st.just("a string"), st.just(7), st.none(), st.just({}))
    return st.just("unexpected")


@st.composite
def schema_mutation(draw):
    data = copy.deepcopy(FULL)
    path = draw(st.sampled_from(PATHS))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent[path[-1]], dict):
        key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
        if key in parent[path[-1]]:
            key += "_extra"
        parent[path[-1]][key] = draw(st.sampled_from([1, "x", None, {"y": 2}]))
        return data, (*path, key), "unknown key"
    parent[path[-1]] = draw(wrong_values(parent[path[-1]]))
    return data, path, "wrong value"


def related(problem_path: str, mutated: str) -> bool:
    """The problem names the mutated field, a field inside it, or the object that holds it."""
    if not problem_path:
        return "." not in mutated and "[" not in mutated
    return (
        problem_path == mutated
        or mutated.startswith(problem_path + ".")
        or mutated.startswith(problem_path + "[")
        or problem_path.startswith(mutated + ".")
        or problem_path.startswith(mutated + "[")
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema_mutation())
def test_every_field_of_a_full_spec_refuses_wrong_values_naming_file_and_field(case) -> None:
    data, path, how = case
    mutated = dotted(path)
    try:
        wave = parse_wave(data, FILE)
    except SpecError as err:
        assert err.file == FILE and str(err).startswith(f"{FILE}: ")
        assert all(reason for _, reason in err.problems)
        assert any(related(p, mutated) for p, _ in err.problems), (how, mutated, err.problems)
        return
    # Accepted (e.g. a number still in range): it must then build into a whole DAG, or waves.py
    # would lose every wave of the folder at parse time.
    assert isinstance(wave, Wave), (how, mutated)
    from include.slow_injection.builders.factory import build_dag

    build_dag(wave)


def test_the_full_spec_itself_is_valid() -> None:
    """The control: the mutations above are what makes those specs fail."""
    assert parse_wave(copy.deepcopy(FULL), FILE).id == "lab-web"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("id: w3\nowner: !!python/object/apply:os.system ['echo pwned']\n", 2),
        ("id: w3\nowner: !!python/name:os.system\n", 2),
        ("id: w3\nowner: !!python/object/new:subprocess.Popen [['true']]\n", 2),
        ("id: w3\ntags: [ok, !!python/module:os]\n", 2),
        ("id: !!binary aGVsbG8=\n", None),
        ("id: w3\nowner: !custom {a: 1}\n", 2),
    ],
)
def test_python_and_unknown_tags_are_refused_with_file_and_line(
    tmp_path: Path, text: str, line: int | None, monkeypatch
) -> None:
    import os

    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    path = tmp_path / "w3.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_wave(path)
    message = str(caught.value)
    assert "w3.yaml" in message and "Traceback" not in message
    if line is not None:
        assert f"line {line}" in message, message
    assert not called


def test_a_folder_with_broken_files_gives_every_valid_dag_whole_and_one_error_per_broken_file(tmp_path: Path) -> None:
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_waves
    from tests.support.waves import bag_for

    (tmp_path / "lab-web.yaml").write_text((ROOT / "include" / "waves" / "lab-web.yaml").read_text())
    broken = copy.deepcopy(FULL)
    broken["id"] = "lab-broken"
    broken["services"][1]["traffic_steps"][0]["weight"] = 250
    (tmp_path / "lab-broken.yaml").write_text(json.dumps(broken))  # JSON is YAML too
    (tmp_path / "tagged.yaml").write_text("id: tagged\nowner: !!python/name:os.system\n")
    (tmp_path / "binary.yaml").write_bytes(b"\x00\xff\xfe id: \x80\x81")
    (tmp_path / "empty.yaml").write_text("")
    bag = bag_for(tmp_path)
    assert sorted(bag.dags) == ["emergency_rollback", "wave_lab-web"]
    ((error_file, message),) = bag.import_errors.items()
    assert error_file.endswith("wave_spec_errors.py")
    for name in ("lab-broken.yaml: services[1].traffic_steps[0].weight", "tagged.yaml", "binary.yaml", "empty.yaml"):
        assert name in message, message
    assert "Traceback" not in message.split("WaveSpecError")[-1]
    whole = build_dag(next(w for w in load_waves(tmp_path).waves if w.id == "lab-web"))
    assert set(bag.dags["wave_lab-web"].task_ids) == set(whole.task_ids)  # not a part of it
