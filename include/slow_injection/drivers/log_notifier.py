"""Notifier that writes each event to the task log (the default when nothing else is configured)."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict

log = logging.getLogger("slow_injection.notifications")


class LogNotifier:
    port = "notifier"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        level: str = "INFO"

    def __init__(self, level: str) -> None:
        self.level = logging.getLevelName(level.upper())
        if not isinstance(self.level, int):
            self.level = logging.INFO

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: object) -> LogNotifier:
        return cls(settings.level)

    def describe(self) -> str:
        return "log"

    def notify(self, event: str, subject: str, body: str) -> None:
        log.log(self.level, "[%s] %s\n%s", event, subject, body)
