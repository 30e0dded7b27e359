"""The board and error pages as small, self-contained HTML (no external assets), rendered from
templates/ by Jinja2 with autoescaping on: every value from the board (service, gate and wave names,
reasons, owners, run ids, spec errors, URLs) is escaped by the template. These pages are served on
the Airflow UI's origin: never mark anything from the board as safe (Markup, |safe)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

REFRESH_SECONDS = 30
TEMPLATES = Path(__file__).with_name("templates")


def message_page(title: str, message: str) -> str:
    return _render("message.html", title=title, message=message)


def markdown_page(title: str, markdown: str, note: str) -> str:
    """A report.md shown as text, for runs whose report.html does not exist."""
    return _render("markdown.html", title=title, markdown=markdown, note=note)


def board_page(board: dict[str, Any]) -> str:
    return _render("board.html", title="Migration board", board=board, refresh_seconds=REFRESH_SECONDS)


def latest_per_gate(verdicts: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """The last verdict of each gate (a gate repeats at every traffic step) and how often it ran."""
    last: dict[tuple[Any, Any], dict[str, Any]] = {}
    count: dict[tuple[Any, Any], int] = {}
    for v in verdicts:
        key = (v.get("kind"), v["gate"])
        last.pop(key, None)  # keep the order of the latest occurrence
        last[key] = v
        count[key] = count.get(key, 0) + 1
    return [(v, count[k]) for k, v in last.items()]


def _clip(text: Any, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "…"


def _render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["clip"] = _clip
    env.globals["latest_per_gate"] = latest_per_gate
    return env
