"""Hostile specs: whatever is in the file, the loader answers with a valid wave or a SpecError that
names the file and a field — never another exception (a traceback in the UI or the CLI)."""

from __future__ import annotations

import copy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.slow_injection.spec import SpecError, Wave, load_wave, parse_wave
from tests.support.waves import _paths, small_wave

BASE = small_wave("w", wave_id="hostile")
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated(draw):
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "extra"]))
            if action == "replace":
                parent[path[-1]] = draw(VALUES)
            elif action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_specs_give_a_wave_or_a_located_error(data) -> None:
    try:
        wave = parse_wave(data, "include/waves/hostile.yaml")
    except SpecError as err:
        assert err.problems
        for _path, reason in err.problems:
            assert reason
        assert str(err).startswith("include/waves/hostile.yaml: ")
        return
    assert isinstance(wave, Wave)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_escapes_as_another_exception(tmp_path_factory, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("hostile")) / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_wave(path)
    except SpecError as err:
        assert "hostile.yaml" in str(err)


def test_a_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
        f"*a{i - 1}]"
        for i in range(1, 10)
    ]
    path = tmp_path / "hostile.yaml"
    path.write_text("\n".join(lines) + "\n")
    try:
        load_wave(path)
    except SpecError as err:
        assert "aliases" in str(err)
    else:
        raise AssertionError("alias bomb accepted")
