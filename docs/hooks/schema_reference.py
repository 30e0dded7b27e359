"""MkDocs hook: the reference pages that come from the code, so they cannot drift from it.

- `reference/spec.md` is generated at build time from include/schema/wave.schema.json (the JSON
  Schema `make schema` exports from the spec's pydantic models): one table per object, each field with
  its path, type, whether it is required, default, allowed values and description. No file is
  committed for it.
- In any page, a line `<!-- driver-settings: KIND/TYPE -->` becomes the settings table of that driver,
  from its pydantic `Settings` model (include/slow_injection/registry.py). A driver in the registry
  that no page documents is a warning, so `mkdocs build --strict` fails until it has a page.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.schema_reference")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "include" / "schema" / "wave.schema.json"
SPEC_PAGE = "reference/spec.md"
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h))+$"
MARKER = re.compile(r"^<!-- driver-settings: (?P<kind>[a-z_]+)/(?P<type>[a-z0-9_]+) -->$", re.M)

_documented: set[tuple[str, str]] = set()
if str(ROOT) not in sys.path:  # the driver settings come from the project's own modules
    sys.path.insert(0, str(ROOT))


# --- JSON Schema → Markdown ------------------------------------------------------------------------------


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(prefix: str, name: str) -> str:
    return f"{prefix}{name.lower()}"


def _is_duration(node: dict[str, Any]) -> bool:
    options = node.get("oneOf") or []
    return any(o.get("pattern") == DURATION_PATTERN for o in options) and any(
        o.get("type") == "number" for o in options
    )


def _without_null(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in options if o.get("type") != "null"]


def type_of(node: dict[str, Any], prefix: str) -> str:
    """A short, readable type: `string`, `list of` [MetricGate](#…), `duration`, `map of string → …`."""
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        return f"[{name}](#{_anchor(prefix, name)})"
    if _is_duration(node):
        return "duration"
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = _without_null(node[key])
            nullable = len(options) < len(node[key])
            text = " or ".join(type_of(o, prefix) for o in options)
            return f"{text} or null" if nullable and not options else text
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {type_of(node.get('items', {}), prefix)}"
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict):
            return f"map of string → {type_of(values, prefix)}"
        patterned = node.get("patternProperties")
        if patterned:
            return f"map of path → {type_of(next(iter(patterned.values())), prefix)}"
        return "mapping"
    if "enum" in node:
        return "string"
    return kind or "any"


def _code(value: Any) -> str:
    text = value if isinstance(value, str) and value else json.dumps(value, ensure_ascii=False)
    return f"`{text}`" if "`" not in text else text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def allowed_of(node: dict[str, Any]) -> str:
    """Allowed values and bounds: the enum, minimum/maximum, lengths, a pattern (durations aside)."""
    if _is_duration(node):
        return "seconds, or `500ms`, `30s`, `5m`, `1h30m`"
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [allowed_of(o) for o in _without_null(node[key])]
            return "; ".join(p for p in parts if p)
    if node.get("type") == "array":
        inner = allowed_of(node.get("items", {}))
        counts = []
        if "minItems" in node:
            counts.append(f"at least {node['minItems']} item(s)")
        if "maxItems" in node:
            counts.append(f"at most {node['maxItems']} item(s)")
        if node.get("uniqueItems"):
            counts.append("no duplicates")
        return "; ".join(p for p in (inner and f"each: {inner}", *counts) if p)
    parts = []
    if "enum" in node:
        parts.append(", ".join(_code(v) for v in node["enum"]))
    if "const" in node:
        parts.append(_code(node["const"]))
    low = [f"≥ {_number(node['minimum'])}"] if "minimum" in node else []
    low += [f"> {_number(node['exclusiveMinimum'])}"] if "exclusiveMinimum" in node else []
    high = [f"≤ {_number(node['maximum'])}"] if "maximum" in node else []
    high += [f"< {_number(node['exclusiveMaximum'])}"] if "exclusiveMaximum" in node else []
    if low or high:
        parts.append(", ".join(low + high))
    if "minLength" in node or "maxLength" in node:
        lo, hi = node.get("minLength"), node.get("maxLength")
        parts.append(f"{lo or 0}–{hi} characters" if hi is not None else f"at least {lo} character(s)")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    if "maxProperties" in node:
        parts.append(f"at most {node['maxProperties']} entries")
    return "; ".join(parts)


def default_of(node: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" not in node:
        return "—"
    value = node["default"]
    if _is_duration(node) and isinstance(value, (int, float)):
        return f"`{_number(value)}` s"
    return _code(value)


# Markdown still reads inside inline HTML: a pattern's `[a-z]([a-z-]…)` would be a link, `_`/`*` emphasis.
_MARKDOWN_IN_CODE = str.maketrans({c: f"&#{ord(c)};" for c in "|[]()*_\\"})


def _cell(text: str) -> str:
    """One table cell on one line: code spans as <code> (a pipe in a pattern must not split the cell, and
    a backslash escape would show inside code), `<` and `>` escaped outside them (`wave_<id>` is text)."""
    out = []
    for part in re.split(r"(`[^`]+`)", " ".join(text.split())):
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            code = html.escape(part[1:-1]).translate(_MARKDOWN_IN_CODE)
            out.append(f"<code>{code}</code>")
        else:
            out.append(html.escape(part, quote=False).replace("|", "&#124;"))
    return "".join(out)


def description_of(node: dict[str, Any]) -> str:
    text = node.get("description", "")
    if not text:
        for key in ("anyOf", "oneOf"):
            text = next((o.get("description", "") for o in node.get(key, []) if "$ref" not in o), text)
    return "" if text == "seconds" else text


def object_table(schema: dict[str, Any], path: str, prefix: str) -> list[str]:
    required = set(schema.get("required", ()))
    lines = ["| field | type | default | allowed values | description |", "|---|---|---|---|---|"]
    for name, node in schema.get("properties", {}).items():
        field = f"{path}.{name}" if path else name
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    f"`{field}`",
                    type_of(node, prefix),
                    default_of(node, name in required),
                    allowed_of(node),
                    description_of(node),
                )
            )
            + " |"
        )
    if schema.get("additionalProperties") is True:
        lines.append(
            f"| `{path + '.' if path else ''}…` | any | — | — | every other key is a driver setting: "
            "see the driver's page |"
        )
    return lines


def _refs(node: Any) -> list[str]:
    """Definition names a node refers to, in document order."""
    if isinstance(node, dict):
        found = [_ref_name(node["$ref"])] if "$ref" in node else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [name for item in node for name in _refs(item)]
    return []


def _suffix(node: dict[str, Any]) -> str:
    """How a field's path continues into the object it refers to: `[]` for lists, `.*` for maps."""
    for key in ("anyOf", "oneOf"):
        if key in node:
            return next((_suffix(o) for o in node[key] if _refs(o)), "")
    if node.get("type") == "array":
        return "[]" + _suffix(node.get("items", {}))
    if isinstance(node.get("additionalProperties"), dict):
        return ".*" + _suffix(node["additionalProperties"])
    return ""


def usage_paths(schema: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Definitions in the order a reader meets them from the top, and every path each one is used at."""
    defs = schema.get("$defs", {})
    order: list[str] = []
    paths: dict[str, list[str]] = {}

    def visit(obj: dict[str, Any], path: str) -> None:
        for name, node in obj.get("properties", {}).items():
            field = f"{path}.{name}" if path else name
            for ref in dict.fromkeys(_refs(node)):
                at = field + _suffix(node)
                if ref not in paths:
                    order.append(ref)
                    paths[ref] = []
                if at not in paths[ref]:
                    paths[ref].append(at)
                    visit(defs[ref], at)

    visit(schema, "")
    order += [name for name in defs if name not in paths]  # unreachable from the top: listed last
    return order, paths


def render_schema(
    schema: dict[str, Any], *, prefix: str, top_title: str, heading: str = "##", top_path: str = ""
) -> str:
    """An object schema with its definitions as Markdown: the top object's table, then one section per
    definition (each with the paths it is used at)."""
    out = [f"{heading} {top_title} {{#{prefix}top}}", ""]
    if schema.get("description"):
        out += [" ".join(schema["description"].split()), ""]
    out += object_table(schema, top_path, prefix) + [""]
    order, paths = usage_paths(schema)
    for name in order:
        definition = schema["$defs"][name]
        out += [f"{heading} {name} {{#{_anchor(prefix, name)}}}", ""]
        if definition.get("description"):
            out += [" ".join(definition["description"].split()), ""]
        at = paths.get(name) or []
        if at:
            where = ", ".join(f"`{p}`" for p in (f"{top_path}.{p}" if top_path else p for p in at))
            out += [f"Used at: {where}.", ""]
        out += object_table(definition, "", prefix) + [""]
    return "\n".join(out)


# --- the pages -------------------------------------------------------------------------------------------

SPEC_INTRO = """\
# Spec field reference

Generated when the site is built from `include/schema/wave.schema.json`, the JSON Schema that
`make schema` exports from the spec's models (a test keeps the file in sync with them), so this page
cannot drift from the code. [Writing a spec](../writing-a-spec.md) explains the rules that span fields
and shows a whole spec.

- **Path**: a field's full path is the section's *Used at* path followed by the field; `[]` stands for
  any item of a list, `*` for any key of a map.
- **Default**: *required* fields have none; *—* marks an optional field whose default is not a fixed
  value in the schema (an empty list or mapping, or a section with its own defaults).
- **Durations** are seconds (a number) or a string such as `500ms`, `30s`, `5m`, `1h30m`; a duration's
  default is shown in seconds.
- Unknown keys are errors, and nothing is coerced (`"25"` is not a number).
- A driver reference (`type` + `connection`) takes the driver's own settings beside them:
  [Drivers](../drivers/index.md) has a page per driver with its settings.

"""


def spec_reference() -> str:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return SPEC_INTRO + render_schema(schema, prefix="spec-", top_title="Wave (the top level)")


def driver_settings(kind: str, type_name: str) -> str:
    from include.slow_injection import registry

    settings = registry.driver_class(kind, type_name).Settings.model_json_schema()
    settings.pop("title", None)
    body = render_schema(
        settings,
        prefix=f"{kind}-{type_name}-".replace("_", "-"),
        top_title=f"Settings of `{type_name}` ({kind.replace('_', ' ')})",
        heading="###",
    )
    note = (
        "Generated from the driver's `Settings` model when the site is built. Beside them, every "
        "driver reference takes `type` and `connection` (an Airflow connection id)."
    )
    return body.replace("\n\n", f"\n\n{note}\n\n", 1)


def on_files(files, config):
    files.append(File.generated(config, SPEC_PAGE, content=spec_reference()))
    return files


def on_pre_build(config):
    _documented.clear()


def on_page_markdown(markdown, page, config, files):
    def replace(match: re.Match[str]) -> str:
        _documented.add((match["kind"], match["type"]))
        return driver_settings(match["kind"], match["type"])

    return MARKER.sub(replace, markdown)


def on_post_build(config):
    from include.slow_injection import registry

    for kind in registry.KINDS:
        for type_name in registry.known(kind):
            if (kind, type_name) not in _documented:
                log.warning(
                    "driver %s/%s has no page: add `<!-- driver-settings: %s/%s -->` to one under docs/drivers/",
                    kind,
                    type_name,
                    kind,
                    type_name,
                )
