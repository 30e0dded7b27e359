"""Metric queries as specs write them: `${service}` and `${env}` filled in before a source runs them."""

from __future__ import annotations

from string import Template


def render_query(query: str, service: str | None, env: str) -> str:
    return Template(query).safe_substitute(service=service or "", env=env)
