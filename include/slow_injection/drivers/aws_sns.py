"""Notifier that publishes each event to an Amazon SNS topic, through the amazon provider's
SnsNotifier (so credentials, role assumption and endpoints come from the Airflow AWS connection).

Subscribers can filter on the message attribute `event` (an SNS subscription filter policy such as
{"event": ["gate_failed", "rollback_started"]}). The subject is cut down to what SNS accepts; the
full subject is always the message's first line.
"""

from __future__ import annotations

import json
import re
import unicodedata

from pydantic import BaseModel, ConfigDict, field_validator

from include.slow_injection.aws.iam import Statement

_TOPIC_ARN = re.compile(
    r"^arn:aws[a-z-]*:sns:(?P<region>[a-z]{2}(-[a-z]+)+-\d):\d{12}:[A-Za-z0-9_-]{1,256}(?P<fifo>\.fifo)?$"
)

# SNS Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less than
# 100 characters long"; email endpoints further want ASCII starting with a letter, digit or punctuation.
SUBJECT_MAX = 99
# 256 KiB per message (body and attributes together); the hook sends the body JSON-encoded.
MESSAGE_MAX_BYTES = 256 * 1024 - 2 * 1024

# Characters our subjects use whose ASCII stand-ins read better than dropping them.
_ASCII_STANDINS = str.maketrans(
    {
        "→": "->",
        "←": "<-",
        "—": "-",
        "–": "-",
        "…": "...",
        "≤": "<=",
        "≥": ">=",
        "≠": "!=",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "×": "x",
        "\u00a0": " ",
    }
)


def sns_subject(text: str, max_length: int = SUBJECT_MAX) -> str:
    """`text` as a valid SNS subject: printable ASCII on one line, not starting with a space, cut to
    `max_length` with "..."."""
    text = text.translate(_ASCII_STANDINS)
    # Accents lose their mark ("é" → "e"); anything else non-ASCII is dropped.
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())  # newlines, tabs and runs of spaces become one space
    if len(text) > max_length:
        text = text[: max_length - 3].rstrip() + "..."
    return text


def _fit_message(message: str) -> str:
    """Cut `message` so the JSON form the hook publishes stays under SNS's size limit."""
    marker = "\n[... truncated]"
    size = len(json.dumps({"default": message}).encode())
    while size > MESSAGE_MAX_BYTES:
        keep = int(len(message) * MESSAGE_MAX_BYTES / size) - len(marker) - 16
        message = message[:keep] + marker
        size = len(json.dumps({"default": message}).encode())
    return message


class SnsNotifier:
    port = "notifier"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        topic_arn: str
        region: str | None = None  # default: the topic's own region (SNS only publishes there)
        subject_prefix: str = "[slow-injection]"

        @field_validator("topic_arn")
        @classmethod
        def _standard_topic(cls, value: str) -> str:
            match = _TOPIC_ARN.match(value)
            if not match:
                raise ValueError(
                    f"must be an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:waves, got {value!r}"
                )
            if match["fifo"]:
                # FIFO topics need a MessageGroupId, which the provider's notifier does not send.
                raise ValueError("must be a standard SNS topic, not a FIFO topic (.fifo)")
            return value

    def __init__(
        self, topic_arn: str, connection_id: str, region: str | None = None, subject_prefix: str = "[slow-injection]"
    ) -> None:
        self.topic_arn = topic_arn
        self.connection_id = connection_id
        self.region = region or _TOPIC_ARN.match(topic_arn)["region"]  # type: ignore[index]
        self.subject_prefix = subject_prefix

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: object) -> SnsNotifier:
        if not connection_id:
            raise ValueError("sns notifier: `connection` is required (the Airflow AWS connection id to publish with)")
        return cls(settings.topic_arn, connection_id, settings.region, settings.subject_prefix)

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Statement]:
        return [Statement(("sns:Publish",), (settings.topic_arn,), "notify wave events")]

    def describe(self) -> str:
        return f"sns {self.topic_arn}"

    def notify(self, event: str, subject: str, body: str) -> None:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier as ProviderSnsNotifier

        lines = [subject, ""] + ([body, ""] if body else []) + [f"event: {event}"]
        provider = ProviderSnsNotifier(
            aws_conn_id=self.connection_id,
            region_name=self.region,
            target_arn=self.topic_arn,
            subject=sns_subject(f"{self.subject_prefix} {subject}") or None,
            message=_fit_message("\n".join(lines)),
            message_attributes={"event": event},
        )
        # Called directly, not as a callback: our text is final and is not a Jinja template.
        provider.notify({})
