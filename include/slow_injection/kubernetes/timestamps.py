"""Kubernetes' timestamps (RFC 3339, UTC, whole seconds): the only format the API writes them in."""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def to_rfc3339(t: dt.datetime | float) -> str:
    """A datetime or epoch seconds as the API writes it; such strings order like the times."""
    moment = t if isinstance(t, dt.datetime) else dt.datetime.fromtimestamp(t, dt.UTC)
    return moment.astimezone(dt.UTC).strftime(FORMAT)


def from_rfc3339(ts: str) -> dt.datetime:
    return dt.datetime.strptime(ts, FORMAT).replace(tzinfo=dt.UTC)
