"""SNS and Slack notifiers, end to end through tasks/notify: SNS against moto (server mode) with an
SQS queue subscribed to the topic, Slack against a local HTTP server standing in for the webhook."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from include.slow_injection.drivers.aws_sns import SUBJECT_MAX, SnsNotifier, sns_subject
from include.slow_injection.drivers.slack_notifier import TEXT_MAX, SlackNotifier, slack_text
from include.slow_injection.tasks import notify as notify_module
from include.slow_injection.tasks.notify import notify
from tests.support.aws import ACCOUNT, REGION
from tests.support.standins import WebhookStandIn

WAVE = "payments-1"


def gate_failed_example() -> tuple[str, str]:
    """Subject and body exactly as StageDecision builds them for a failed metric gate."""
    from include.slow_injection.gates.verdict import Verdict
    from include.slow_injection.tasks.decision import judge

    verdict = Verdict(
        gate="error-rate",
        kind="metric",
        status="fail",
        condition="< 0.05",
        reason="2 breach(es) of < 0.05",
        measurements=[{"value": 0.01}, {"value": 0.071}, {"value": None}, {"value": 0.093}],
    )
    outcome, reasons = judge({"validation.shift": {"ok": True}}, {"validation.gate_error_rate": verdict})
    return f"wave {WAVE}: validation → {outcome}", "\n".join(reasons + [verdict.summary()])


# --- SNS ---------------------------------------------------------------------------------------


@pytest.fixture
def topic(aws: Any) -> dict[str, str]:
    """An SNS topic with an SQS queue subscribed (envelope delivery: the SNS JSON is the SQS body)."""
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic_arn = sns.create_topic(Name="wave-events")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="wave-events-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return {"topic_arn": topic_arn, "queue_url": queue_url}


def received(aws: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS envelope waiting in the queue (each message taken once)."""
    sqs, out = aws.client("sqs"), []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return out
        out += [json.loads(m["Body"]) for m in batch]


def sns_entry(topic_arn: str, events: list[str], **settings: Any) -> dict[str, Any]:
    return {"notifier": {"type": "sns", "connection": "aws_moto", "topic_arn": topic_arn, **settings}, "events": events}


def test_sns_gate_failed_reaches_the_subscriber_once_with_measured_values(aws: Any, topic: dict[str, str]) -> None:
    subject, body = gate_failed_example()
    notify([sns_entry(topic["topic_arn"], ["gate_failed", "rollback_started"])], "gate_failed", subject, body)

    [envelope] = received(aws, topic["queue_url"])
    assert envelope["Subject"] == f"[slow-injection] wave {WAVE}: validation -> rollback"
    assert envelope["Message"] == f"{subject}\n\n{body}\n\nevent: gate_failed"
    assert "error-rate [fail] < 0.05 measured: 0.01, 0.071, no data, 0.093" in envelope["Message"]
    assert "→" in envelope["Message"]  # the full, unsanitised subject stays in the body
    assert envelope["MessageAttributes"] == {"event": {"Type": "String", "Value": "gate_failed"}}


def test_sns_one_message_per_event_and_none_for_unlisted_events(aws: Any, topic: dict[str, str]) -> None:
    entry = sns_entry(topic["topic_arn"], ["wave_started", "rollback_finished"], subject_prefix="[waves]")
    notify([entry], "wave_started", f"wave {WAVE} started", "")
    notify([entry], "gate_failed", f"wave {WAVE}: validation → rollback", "not subscribed")
    notify(
        [entry],
        "rollback_finished",
        f"wave {WAVE}: all traffic back on blue",
        "checkout: blue 50, green 50 → blue 100, green 0",
    )

    envelopes = received(aws, topic["queue_url"])
    assert sorted(e["MessageAttributes"]["event"]["Value"] for e in envelopes) == ["rollback_finished", "wave_started"]
    by_event = {e["MessageAttributes"]["event"]["Value"]: e for e in envelopes}
    assert by_event["wave_started"]["Subject"] == f"[waves] wave {WAVE} started"
    assert by_event["wave_started"]["Message"] == f"wave {WAVE} started\n\nevent: wave_started"
    assert by_event["rollback_finished"]["Message"].endswith(
        "blue 50, green 50 → blue 100, green 0\n\nevent: rollback_finished"
    )


def test_sns_text_is_sent_as_is_not_rendered_as_a_template(aws: Any, topic: dict[str, str]) -> None:
    body = 'query: sum(rate(x{job="{{ service }}"}[5m]))'
    notify([sns_entry(topic["topic_arn"], ["wave_held"])], "wave_held", "wave {{ ds }} is holding", body)

    [envelope] = received(aws, topic["queue_url"])
    assert envelope["Message"] == f"wave {{{{ ds }}}} is holding\n\n{body}\n\nevent: wave_held"


def test_sns_publish_failure_raises_and_tasks_notify_only_logs_it(aws: Any, caplog: pytest.LogCaptureFixture) -> None:
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:no-such-topic"
    with pytest.raises(Exception, match="(?i)not.?found|does not exist"):
        SnsNotifier(missing, "aws_moto").notify("wave_started", "wave started", "")

    with caplog.at_level(logging.WARNING, logger=notify_module.__name__):
        notify([sns_entry(missing, ["wave_started"])], "wave_started", "wave started")
    warnings = [r.getMessage() for r in caplog.records if r.name == notify_module.__name__]
    assert len(warnings) == 1 and "notifier sns failed for wave_started" in warnings[0]


def test_sns_calls_are_covered_by_its_iam_statements(aws: Any, topic: dict[str, str], api_calls: Any) -> None:
    settings = SnsNotifier.Settings(topic_arn=topic["topic_arn"])
    notify([sns_entry(topic["topic_arn"], ["wave_completed"])], "wave_completed", f"wave {WAVE} completed")

    assert api_calls.calls, "the notifier made no AWS call"
    statements = SnsNotifier.iam_statements(settings)
    for call in api_calls.calls:
        allowed = [st for st in statements if call.action in st.actions]
        assert allowed, f"{call.action} is not in the notifier's IAM statements"
        target = call.params.get("TargetArn") or call.params.get("TopicArn")
        assert any(target in st.resources or "*" in st.resources for st in allowed), (call.action, target)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wave w1: validation → rollback", "wave w1: validation -> rollback"),
        ("  déjà vu ≥ 5 ✓ 🚀 done", "deja vu >= 5 done"),
        ("line one\nline two\r\n\tthree", "line one line two three"),
        ("\x00\x1bbell", "bell"),
    ],
)
def test_sns_subject_is_one_ascii_line(text: str, expected: str) -> None:
    assert sns_subject(text) == expected


def test_sns_subject_is_cut_below_the_limit() -> None:
    long = "wave w1: " + "x" * 200
    cut = sns_subject(long)
    assert len(cut) == SUBJECT_MAX < 100
    assert cut.endswith("...") and cut.startswith("wave w1: xxx")
    assert sns_subject("→" * 60) == "->" * 48 + "..."


def test_sns_settings_and_connection_are_checked() -> None:
    with pytest.raises(ValidationError, match="SNS topic ARN"):
        SnsNotifier.Settings(topic_arn="wave-events")
    with pytest.raises(ValidationError, match="FIFO"):
        SnsNotifier.Settings(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:waves.fifo")
    with pytest.raises(ValidationError):
        SnsNotifier.Settings(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:waves", channel="#ops")
    settings = SnsNotifier.Settings(topic_arn=f"arn:aws:sns:us-east-2:{ACCOUNT}:waves")
    with pytest.raises(ValueError, match="`connection` is required"):
        SnsNotifier.from_spec(settings, None)
    assert SnsNotifier.from_spec(settings, "aws_prod").region == "us-east-2"  # the topic's own region


# --- Slack -------------------------------------------------------------------------------------


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookStandIn]:
    """The stand-in, and connection `slack_waves`: the full webhook URL in the password (the hook
    takes a password containing "://" as the URL, whatever its scheme)."""
    stand_in = WebhookStandIn()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_WAVES",
        json.dumps({"conn_type": "slackwebhook", "password": f"{stand_in.url}/services/T000/B000/secret"}),
    )
    yield stand_in
    stand_in.close()


def slack_entry(events: list[str], connection: str = "slack_waves", **settings: Any) -> dict[str, Any]:
    return {"notifier": {"type": "slack", "connection": connection, **settings}, "events": events}


def test_slack_posts_once_per_event_with_mention_only_when_a_human_is_needed(webhook: WebhookStandIn) -> None:
    subject, body = gate_failed_example()
    entry = slack_entry(["wave_started", "gate_failed"], mention="<!here>")
    notify([entry], "wave_started", f"wave {WAVE} started")
    notify([entry], "gate_failed", subject, body)
    notify([entry], "wave_completed", f"wave {WAVE} completed")  # not listed: nothing sent

    assert [p["path"] for p in webhook.posts] == ["/services/T000/B000/secret"] * 2
    assert webhook.posts[0]["json"] == {"text": f"*wave {WAVE} started*"}
    escaped_body = body.replace("<", "&lt;")
    assert webhook.posts[1]["json"] == {"text": f"<!here> *{subject}*\n{escaped_body}"}
    assert "measured: 0.01, 0.071, no data, 0.093" in webhook.posts[1]["json"]["text"]


def test_slack_connection_with_host_and_token(webhook: WebhookStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_SPLIT",
        json.dumps({"conn_type": "slackwebhook", "host": f"{webhook.url}/services", "password": "T111/B111/token"}),
    )
    notify(
        [slack_entry(["rollback_started"], connection="slack_split")],
        "rollback_started",
        f"wave {WAVE}: rollback started",
    )
    assert webhook.posts == [
        {"path": "/services/T111/B111/token", "json": {"text": f"*wave {WAVE}: rollback started*"}}
    ]


def test_slack_error_answer_raises_and_tasks_notify_only_logs_it(
    webhook: WebhookStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.status = 500
    notifier = SlackNotifier("slack_waves")
    with pytest.raises(Exception, match="500"):
        notifier.notify("rollback_started", "rollback started", "")
    assert len(webhook.posts) == 1  # an error answer is not retried

    with caplog.at_level(logging.WARNING, logger=notify_module.__name__):
        notify([slack_entry(["rollback_started"])], "rollback_started", "rollback started")
    warnings = [r.getMessage() for r in caplog.records if r.name == notify_module.__name__]
    assert len(warnings) == 1 and "notifier slack failed for rollback_started" in warnings[0]
    assert "500" in warnings[0]
    assert len(webhook.posts) == 2


def test_slack_text_is_escaped_and_cut_at_slacks_limit() -> None:
    assert slack_text("a < b & c", "x > y") == "*a &lt; b &amp; c*\nx &gt; y"
    long = slack_text("s", "&" * TEXT_MAX)
    assert len(long) <= TEXT_MAX and long.endswith("[... truncated]")
    kept = long.removesuffix("\n[... truncated]").split("\n", 1)[1]
    assert kept and kept == "&amp;" * (len(kept) // 5)  # no entity cut in half before the marker


def test_slack_settings_and_connection_are_checked() -> None:
    with pytest.raises(ValidationError):
        SlackNotifier.Settings(mention="here")
    with pytest.raises(ValidationError):
        SlackNotifier.Settings(channel="#ops")
    with pytest.raises(ValueError, match="`connection` is required"):
        SlackNotifier.from_spec(SlackNotifier.Settings(), None)


def test_sns_message_is_cut_to_fit_snss_size_limit() -> None:
    from include.slow_injection.drivers.aws_sns import MESSAGE_MAX_BYTES, _fit_message

    fitted = _fit_message("gate failed\n" + "→" * 100_000)  # each "→" is 6 bytes once JSON-encoded
    assert len(json.dumps({"default": fitted}).encode()) <= MESSAGE_MAX_BYTES
    assert fitted.startswith("gate failed\n→") and fitted.endswith("[... truncated]")
    assert _fit_message("short") == "short"
