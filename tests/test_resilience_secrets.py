"""Secrets never leak: whole waves (dag.test) whose Prometheus, HTTP health-check and Slack connections
carry passwords and tokens, on a promote path and on a failure path (a 503 from Prometheus reached
through a URL with credentials in it, Slack answering 500). Then everything the runs produced is
searched for the secret strings: the task log output, AIRFLOW_HOME's files, every XCom value, the
report files, what Slack received, and the migration board's JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.standins import PrometheusStandIn, WebhookStandIn
from tests.support.waves import healthy_world, run_wave, small_wave, weights_history

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

PROM_PASSWORD = "prom-pw-7Qx9Zr4Lk"
URL_PASSWORD = "url-pw-K3v8LmQ2"
HEALTH_PASSWORD = "health-pw-Ww2Np4Ty"
SLACK_TOKEN = "slack-tok-Jd83HsXv"
SECRETS = (PROM_PASSWORD, URL_PASSWORD, HEALTH_PASSWORD, SLACK_TOKEN)


@pytest.fixture
def backends(monkeypatch):
    """Prometheus and green's health endpoint behind basic auth, a Slack webhook; their connections."""
    prometheus = PrometheusStandIn(basic_auth=f"prom-user:{PROM_PASSWORD}").start()
    prometheus_by_url = PrometheusStandIn(mode="http_503", basic_auth=f"prom-user:{URL_PASSWORD}").start()
    health = PrometheusStandIn(basic_auth=f"probe:{HEALTH_PASSWORD}").start()
    slack = WebhookStandIn()
    connections = {
        "prom_auth": {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": prometheus.port,
            "login": "prom-user",
            "password": PROM_PASSWORD,
        },
        # credentials inside a full URL in `host`: the form most likely to end up in a message
        "prom_url": {
            "conn_type": "http",
            "host": f"http://prom-user:{URL_PASSWORD}@127.0.0.1:{prometheus_by_url.port}",
        },
        "green_auth": {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": health.port,
            "login": "probe",
            "password": HEALTH_PASSWORD,
        },
        "slack_secret": {"conn_type": "slackwebhook", "password": f"{slack.url}/services/T0/B0/{SLACK_TOKEN}"},
    }
    for conn_id, conn in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    yield {"prometheus": prometheus, "prometheus_by_url": prometheus_by_url, "health": health, "slack": slack}
    for server in (prometheus, prometheus_by_url, health):
        server.stop()
    slack.close()


def secret_wave(world_name: str, prometheus_connection: str) -> dict[str, Any]:
    data = small_wave(world_name, "secrets")
    data["services"] = [data["services"][1]]
    web = data["services"][0]
    web["health_checks"] = [
        {
            "name": "green-healthz",
            "check": {"type": "http", "connection": "green_auth", "path": "/healthz"},
            "consecutive_successes": 2,
            "interval": 0.1,
            "timeout": 5,
        }
    ]
    source = {"type": "prometheus", "connection": prometheus_connection, "timeout": 1}
    web["gates"][0]["source"] = source
    data["release_monitoring"]["gates"][0]["source"] = source
    data["notifications"] = [{"notifier": {"type": "slack", "connection": "slack_secret"}}]
    data["report"] = {"source": source, "step": 1, "plots": [{"name": "errors", "query": 'error_ratio{env="${env}"}'}]}
    return data


def everything_the_run_left(
    run_id: str, reports_dir: Path, captured: str, slack: WebhookStandIn | None = None
) -> dict[str, str]:
    """Where a secret could surface, as text per place."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    # the webhook's path is the token (that is where it belongs); the messages must not hold it
    posts = getattr(slack, "posts", [])
    places = {"task log output": captured, "slack messages": json.dumps([p["json"] for p in posts])}
    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.run_id == run_id).all()
        places["xcom"] = "\n".join(
            f"{r.task_id}/{r.key}: {json.dumps(XComModel.deserialize_value(r), default=str)}" for r in rows
        )
    assert rows, "the run left no XCom: nothing was searched"
    folder = reports_dir / "wave_secrets" / run_id.replace(":", "_")
    for name in ("report.json", "report.md", "report.html"):
        places[name] = (folder / name).read_text()
    home = Path(os.environ["AIRFLOW_HOME"])
    for path in home.rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-journal") and path.stat().st_size < 5_000_000:
            places[f"AIRFLOW_HOME/{path.relative_to(home)}"] = path.read_text(errors="replace")
    return places


def board_json(folder: Path) -> str:
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from slow_injection_board import board
    from slow_injection_board.app import create_app

    token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(folder))
        board.clear_cache()
        try:
            answer = TestClient(create_app()).get("/api/board", headers={"Authorization": f"Bearer {token}"})
        finally:
            board.clear_cache()
    assert answer.status_code == 200, answer.text
    return answer.text


def leaks(places: dict[str, str]) -> list[str]:
    return [f"{secret} in {place}" for place, text in places.items() for secret in SECRETS if secret in text]


def test_a_promoted_wave_with_authenticated_backends_leaks_no_secret(
    tmp_path: Path, world, backends, capfd, caplog, reports_dir: Path
) -> None:
    world.reset(healthy_world())
    state, tis = run_wave(tmp_path, world, secret_wave(world.path.stem, "prom_auth"))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert weights_history(world) == [25, 100]
    # the credentials were used (so they were there to leak): basic auth reached both backends
    assert any(r["authorization"] for r in backends["prometheus"].requests)
    assert any(r["path"].startswith("/healthz") and r["authorization"] for r in backends["health"].requests)
    assert [p["path"] for p in backends["slack"].posts][:1] == [f"/services/T0/B0/{SLACK_TOKEN}"]
    out, err = capfd.readouterr()
    places = everything_the_run_left(run_wave.last_run_id, reports_dir, out + err + caplog.text, backends["slack"])
    places["board"] = board_json(tmp_path)
    assert "secrets" in places["board"]
    assert not leaks(places), leaks(places)


def test_a_gate_failing_on_a_url_with_credentials_and_a_failing_slack_leak_no_secret(
    tmp_path: Path, world, backends, capfd, caplog, reports_dir: Path
) -> None:
    world.reset(healthy_world())
    backends["slack"].status = 500
    state, tis = run_wave(tmp_path, world, secret_wave(world.path.stem, "prom_url"))
    assert state == "failed"
    assert tis["gradual_transition.web.step1_25pct.gate_error-rate"] == "failed"
    assert weights_history(world) == [25, 0]
    # the URL's credentials reached Prometheus as basic auth, and it answered 503: the failure is real
    assert backends["prometheus_by_url"].requests and all(
        r["authorization"] for r in backends["prometheus_by_url"].requests
    )
    assert backends["slack"].posts  # Slack was called and failed
    out, err = capfd.readouterr()
    places = everything_the_run_left(run_wave.last_run_id, reports_dir, out + err + caplog.text, backends["slack"])
    assert "prometheus HTTP 503" in places["xcom"]  # the error text is there, only without the secret
    assert "Status Code: 500" in places["task log output"]  # so is Slack's failure
    places["board"] = board_json(tmp_path)
    assert not leaks(places), leaks(places)


AWS_SECRET = "aws-secret-Zp4Rt8WqLm2Xc"


def test_an_aws_wave_on_moto_leaks_no_secret_access_key(
    tmp_path: Path, aws_world, alb, monkeypatch, capfd, caplog, reports_dir: Path
) -> None:
    """The moto wave of test_aws_wave_runs, its AWS connection holding a distinctive secret key, with
    a CloudWatch breach so the rollback path runs too."""
    from tests.support.aws_waves import aws_wave, green_error_percent, notices

    conn = json.loads(aws_world["server"].connection_uri())
    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", json.dumps({**conn, "password": AWS_SECRET}))
    green_error_percent(aws_world["cloudwatch"], 5.0)
    data = aws_wave(aws_world["world"].path.stem, alb, aws_world["topic"])
    data["id"] = "secrets"
    state, tis = run_wave(tmp_path, aws_world["world"], data)
    assert state == "failed" and tis["rollback.traffic_to_blue"] == "success"
    assert tis["preparation.ensure_fargate_profile"] == "success"  # the connection was used
    sent = notices(aws_world["sqs"], aws_world["queue"])
    assert "gate_failed" in [n["event"] for n in sent]
    out, err = capfd.readouterr()
    places = everything_the_run_left(run_wave.last_run_id, reports_dir, out + err + caplog.text)
    places["sns notices"] = json.dumps(sent)
    places["board"] = board_json(tmp_path)
    found = [place for place, text in places.items() if AWS_SECRET in text]
    assert not found, found
