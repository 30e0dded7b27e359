"""The wave spec's JSON Schema, exported to include/schema/wave.schema.json for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from include.slow_injection.spec.loader import PROJECT_ROOT
from include.slow_injection.spec.models import Wave

SCHEMA_PATH = PROJECT_ROOT / "include" / "schema" / "wave.schema.json"


def wave_schema() -> dict[str, Any]:
    schema = Wave.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://slow-injection.invalid/wave.schema.json",
        **schema,
        "title": "Slow Injection wave spec",
    }


def render() -> str:
    return json.dumps(wave_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path
