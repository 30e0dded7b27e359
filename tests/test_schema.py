"""The exported JSON Schema stays in sync with the models and accepts the shipped waves."""

from __future__ import annotations

import json

import jsonschema
import yaml

from include.slow_injection import schema
from include.slow_injection.spec.loader import DEFAULT_WAVES_DIR, deep_merge, spec_files


def test_exported_schema_is_in_sync_with_the_models() -> None:
    assert schema.SCHEMA_PATH.read_text(encoding="utf-8") == schema.render(), "run `make schema`"


def test_shipped_waves_validate_against_the_exported_schema() -> None:
    exported = json.loads(schema.SCHEMA_PATH.read_text(encoding="utf-8"))
    defaults = yaml.safe_load((DEFAULT_WAVES_DIR / "_defaults.yaml").read_text()) or {}
    for path in spec_files(DEFAULT_WAVES_DIR):
        jsonschema.validate(deep_merge(defaults, yaml.safe_load(path.read_text())), exported)


def test_schema_rejects_unknown_keys_like_the_loader() -> None:
    exported = json.loads(schema.SCHEMA_PATH.read_text(encoding="utf-8"))
    assert exported["additionalProperties"] is False
    assert "services" in exported["required"]
