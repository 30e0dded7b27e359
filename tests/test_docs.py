"""The README and the documentation site (mkdocs.yml, docs/): what they show must hold against the code.

The site's own build (`mkdocs build --strict`, run by tests/run_suite.sh) fails on a broken link, anchor
or page; these tests check what it cannot: the README's links, that the generated reference covers every
field of the schema, and that the driver settings the pages show are ones the drivers accept.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.slow_injection import registry
from include.slow_injection.schema import SCHEMA_PATH
from include.slow_injection.spec.loader import driver_settings_errors

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
DRIVER_KINDS = {
    "router": "router",
    "source": "metric_source",
    "check": "health_check",
    "platform": "platform",
    "notifier": "notifier",
    "replication": "data_replication",
}


def hook() -> Any:
    spec = importlib.util.spec_from_file_location("schema_reference", DOCS / "hooks" / "schema_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_stays_short_and_keeps_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the rest belongs in docs/"
    assert "make demo" in [line.split("#")[0].strip() for line in lines]
    assert "make test" in [line.split("#")[0].strip() for line in lines]


def test_every_relative_link_in_the_readme_names_a_file_that_exists() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
    relative = [link for link in links if "://" not in link and not link.startswith("#")]
    assert relative, "the README links into docs/"
    missing = [link for link in relative if not (ROOT / link.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_every_docs_page_is_in_the_site_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(entries: Any) -> list[str]:
        if isinstance(entries, str):
            return [entries]
        if isinstance(entries, list):
            return [p for e in entries for p in pages(e)]
        return [p for v in entries.values() for p in pages(v)]

    in_nav = set(pages(config["nav"]))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk <= in_nav, f"pages missing from mkdocs.yml's nav: {sorted(on_disk - in_nav)}"
    assert in_nav - on_disk == {hook().SPEC_PAGE}, "only the generated reference is in the nav without a file"


def test_the_generated_reference_has_a_row_for_every_field_of_the_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    page = hook().spec_reference()
    sections = dict(re.findall(r"^## (\w+) \{#spec-\w+\}\n(.*?)(?=^## |\Z)", page, re.S | re.M))
    sections["Wave"] = page.split("{#spec-top}", 1)[1].split("\n## ", 1)[0]
    for name, definition in [("Wave", schema), *schema["$defs"].items()]:
        assert name in sections, f"no section for {name}"
        for field in definition.get("properties", {}):
            assert f"| <code>{field.replace('_', '&#95;')}</code> |" in sections[name], f"{name}.{field} has no row"


def test_the_reference_says_where_each_object_is_used() -> None:
    page = hook().spec_reference()
    assert "Used at: `services[].gates[]`" in page  # MetricGate, first met under services
    assert "`validation.data_sync.checks[]`" in page and "`notifications[].notifier`" in page


def test_every_registry_driver_has_a_settings_marker_in_the_docs() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "drivers").glob("*.md"))
    marked = set(re.findall(r"<!-- driver-settings: ([a-z_]+)/([a-z0-9_]+) -->", text))
    expected = {(kind, name) for kind in registry.KINDS for name in registry.known(kind)}
    assert expected <= marked, f"drivers without a page: {sorted(expected - marked)}"


def yaml_blocks() -> list[tuple[str, str]]:
    return [
        (p.relative_to(ROOT).as_posix(), block)
        for p in sorted(DOCS.rglob("*.md"))
        for block in re.findall(r"```yaml\n(.*?)```", p.read_text(encoding="utf-8"), re.S)
    ]


def driver_refs(node: Any, kind: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(kind, reference) for every driver reference in a YAML snippet, found by the key it sits under."""
    if isinstance(node, list):
        return [ref for item in node for ref in driver_refs(item, kind)]
    if not isinstance(node, dict):
        return []
    found = [(kind, node)] if kind and "type" in node else []
    for key, value in node.items():
        sub = "data_sync" if key == "checks" else DRIVER_KINDS.get(key)
        found += driver_refs(value, sub)
    return found


@pytest.mark.parametrize(("page", "block"), yaml_blocks(), ids=lambda v: v if v.endswith(".md") else "")
def test_the_driver_settings_in_the_docs_snippets_are_valid(page: str, block: str) -> None:
    refs = driver_refs(yaml.safe_load(block))
    for kind, ref in refs:
        from include.slow_injection.spec.models import DriverRef

        problems = driver_settings_errors(kind, DriverRef.model_validate(ref))
        assert not problems, f"{page}: {kind} {ref}: {problems}"
