"""Best-effort notifications: a failing notifier is logged, never fails a migration step."""

from __future__ import annotations

import logging
from typing import Any

from include.slow_injection import registry

log = logging.getLogger(__name__)


def notify(notifications: list[dict[str, Any]], event: str, subject: str, body: str = "") -> None:
    for entry in notifications:
        if event not in entry.get("events", []):
            continue
        try:
            registry.build("notifier", entry["notifier"]).notify(event, subject, body)
        except Exception as err:
            log.warning("notifier %s failed for %s: %s", entry["notifier"].get("type"), event, err)
