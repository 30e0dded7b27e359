"""The evaluation report goes through Airflow's object storage: a local folder by default, S3 when
SLOW_INJECTION_REPORTS_URL says s3://<connection>@<bucket>/<prefix> (here: moto in server mode)."""

from __future__ import annotations

import pytest

from include.slow_injection.tasks.report import EvaluationReport
from tests.support.aws import CONNECTION_ID, MotoServer
from tests.support.reruns import FakeTI, context

RUN_ID = "manual__2026-01-01T00:00:00"


def report_step() -> EvaluationReport:
    return EvaluationReport(
        task_id="evaluation_report",
        wave_id="s3",
        action_ids=["set_traffic"],
        gate_ids=[],
        decision_ids=[],
        outcome_ids={
            "completed": "post_release.wave_completed",
            "rolled_back": "rollback.wave_rolled_back",
            "held": "wave_held",
        },
    )


def test_the_report_is_written_to_s3_when_configured(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="migration-reports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("SLOW_INJECTION_REPORTS_URL", f"s3://{CONNECTION_ID}@migration-reports/slow-injection")
    xcoms = {
        ("set_traffic", "return_value"): {
            "service": "web",
            "before": "blue 100, green 0",
            "after": "blue 75, green 25",
            "changed": True,
            "dry_run": False,
            "green": 25,
            "at": 1767225600.0,
        }
    }
    result = report_step().execute(context(ti=FakeTI(1, xcoms)))
    assert result["location"].startswith("s3://")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="migration-reports")["Contents"])
    folder = f"slow-injection/wave_s3/{RUN_ID.replace(':', '_')}"
    assert keys == [f"{folder}/report.html", f"{folder}/report.json", f"{folder}/report.md"]
    page = s3.get_object(Bucket="migration-reports", Key=f"{folder}/report.html")["Body"].read().decode()
    assert "<svg" in page and "web" in page
