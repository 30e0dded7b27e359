"""Turn pydantic's errors into `field.path: what would be valid, got X` lines."""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

_EMBEDDED_PATH = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_][\w]*(?:\[\d+\])?)*): (.+)$", re.S)


def format_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join_path(base: str, extra: str) -> str:
    if not base:
        return extra
    if not extra:
        return base
    return base + ("" if extra.startswith("[") else ".") + extra


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional/list to reach the model a path continues into."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _type_at(root: Any, loc: tuple[Any, ...]) -> Any:
    """The (unwrapped) type a location inside the root model points at, or None."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if typing.get_origin(current) is not list:
                return None
            current = typing.get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        else:
            return None
    return _unwrap(current)


def _field_at(root: Any, loc: tuple[Any, ...]) -> FieldInfo | None:
    if not loc or not isinstance(loc[-1], str):
        return None
    owner = _type_at(root, loc[:-1])
    if isinstance(owner, type) and issubclass(owner, BaseModel):
        return owner.model_fields.get(loc[-1])
    return None


def _bounds(field: FieldInfo | None) -> str:
    if field is None:
        return ""
    words = []
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            words.append(f"≥ {meta.ge}")
        elif isinstance(meta, annotated_types.Gt):
            words.append(f"> {meta.gt}")
        elif isinstance(meta, annotated_types.Le):
            words.append(f"≤ {meta.le}")
        elif isinstance(meta, annotated_types.Lt):
            words.append(f"< {meta.lt}")
    return (" " + " and ".join(words)) if words else ""


def _reason(err: ErrorDetails, root: type[BaseModel] | None) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    got = f", got {_show(err.get('input'))}"
    field = _field_at(root, loc)
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        parent = _type_at(root, loc[:-1])
        is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
        valid = ", ".join(parent.model_fields) if is_model else ""
        return f"unknown key{f' (valid keys: {valid})' if valid else ''}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"must be a number{_bounds(field)}{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number{_bounds(field)}{got}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        noun = "a whole number" if field is not None and field.annotation is int else "a number"
        return f"must be {noun}{_bounds(field) or ' in range'}{got}"
    if kind == "bool_type":
        return f"must be true or false{got}"
    if kind == "string_type":
        return f"must be a string (quote it){got}"
    if kind == "list_type":
        return f"must be a list{got}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of keys{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}{got}"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"must have at least {ctx.get('min_length')} characters"
        )
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters{got}"
    if kind == "too_short":
        return f"must list at least {ctx.get('min_length')} item(s)"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}{got}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    return f"{err['msg']}{got}"


def describe_errors(error: ValidationError, root: type[BaseModel] | None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in error.errors(include_url=False):
        path = format_path(tuple(err["loc"]))
        reason = _reason(err, root)
        embedded = _EMBEDDED_PATH.match(reason) if err["type"] == "value_error" else None
        if embedded:
            path, reason = join_path(path, embedded.group(1)), embedded.group(2)
        problems.append((path, reason))
    return problems
