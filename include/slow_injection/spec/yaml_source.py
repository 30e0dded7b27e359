"""Safe YAML for specs: plain data only, no aliases, no duplicate keys, bounded size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from include.slow_injection.spec.errors import SpecError

MAX_SPEC_BYTES = 256 * 1024

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses aliases (alias bombs) and duplicate keys."""

    def construct_object(self, node, deep=False):
        if node in self.constructed_objects:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "YAML aliases (*name) are not allowed in wave specs; use _defaults.yaml for shared values",
                node.start_mark,
            )
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain strings", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
            self.constructed_objects.pop(key_node, None)
        return super().construct_mapping(node, deep=deep)


def load_yaml_file(path: Path, display: str) -> Any:
    """Parse one spec file; every problem becomes a SpecError naming the file."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise SpecError(display, "", f"cannot read file: {err.strerror}") from None
    if size > MAX_SPEC_BYTES:
        raise SpecError(display, "", f"file is {size} bytes; a wave spec may be at most {MAX_SPEC_BYTES}")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        return yaml.load(text, Loader=_SpecLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        if "could not determine a constructor" in problem:
            problem = "tags such as !!python/object are not allowed; specs hold plain data only"
        raise SpecError(display, "", f"{where}{problem}") from None
    except yaml.YAMLError as err:
        raise SpecError(display, "", f"invalid YAML: {err}") from None
