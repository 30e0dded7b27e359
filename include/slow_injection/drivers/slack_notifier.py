"""Notifier that posts each event to a Slack Incoming Webhook, through the slack provider's
SlackWebhookNotifier.

`connection` names an Airflow connection of type `slackwebhook`. The provider's SlackWebhookHook
builds the webhook URL from it like this:
- password holding a full URL ("https://hooks.slack.com/services/T…/B…/…"): used as is (simplest);
- otherwise password is the token ("T…/B…/…"), appended to host: host may be a full URL
  ("https://hooks.slack.com/services"), else `<schema or https>://<host or hooks.slack.com/services>`
  (the connection's port is not used in that form: put a port into a full URL).
Extra `timeout` (seconds) and `proxy` are read too; login and port are ignored.

An incoming webhook is bound to one channel when the Slack app is installed, so there is no channel
setting. slack_sdk retries only a failed connection (its default handler); any answer other than
200 raises, and tasks/notify logs it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

# Slack truncates a message's text beyond 40,000 characters; we cut it ourselves, visibly.
TEXT_MAX = 40_000
# Events that need a human now; only these carry the mention.
MENTION_EVENTS = frozenset({"gate_failed", "rollback_started", "rollback_failed"})

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def slack_escape(text: str) -> str:
    """Slack reads &, < and > as control characters (links, mentions): escape them, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(subject: str, body: str, mention: str | None = None, limit: int = TEXT_MAX) -> str:
    text = f"*{slack_escape(subject)}*"
    if mention:
        text = f"{mention} {text}"
    if body:
        text += "\n" + slack_escape(body)
    if len(text) > limit:
        marker = "\n[... truncated]"
        text = _PARTIAL_ENTITY.sub("", text[: limit - len(marker)]) + marker
    return text


class SlackNotifier:
    port = "notifier"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        mention: str | None = Field(
            default=None,
            pattern=r"^<[!@][^<>\s]+>$",
            description="Slack mention for gate_failed, rollback_started and rollback_failed, "
            'e.g. "<!here>" or "<!subteam^S0123>"',
        )
        timeout: int | None = Field(
            default=None,
            ge=1,
            le=120,
            description="seconds; default: the connection's extra `timeout`, else slack_sdk's 30",
        )

    def __init__(self, connection_id: str, mention: str | None = None, timeout: int | None = None) -> None:
        self.connection_id = connection_id
        self.mention = mention
        self.timeout = timeout

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: object) -> SlackNotifier:
        if not connection_id:
            raise ValueError("slack notifier: `connection` is required (an Airflow connection of type slackwebhook)")
        return cls(connection_id, settings.mention, settings.timeout)

    def describe(self) -> str:
        return f"slack webhook {self.connection_id}"

    def notify(self, event: str, subject: str, body: str) -> None:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        mention = self.mention if event in MENTION_EVENTS else None
        provider = SlackWebhookNotifier(
            slack_webhook_conn_id=self.connection_id,
            text=slack_text(subject, body, mention),
            timeout=self.timeout,
        )
        # Called directly, not as a callback: our text is final and is not a Jinja template.
        provider.notify({})
