"""The Migration board plugin: its FastAPI app on a real metadata DB, with real Airflow JWTs.

Runs, verdicts (XCom) and service asset events are written with the ORM the way tasks leave them;
one test runs a small wave with dag.test() and reads the board it leaves behind.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.reports import HOSTILE, Parsed
from tests.support.waves import healthy_world, small_wave, write

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OLD_RUN = "manual__2026-01-05T09:00:00+00:00"
RUN = "manual__2026-01-06T09:00:00+00:00"
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "slow_injection_board"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def waves_folder(tmp_path_factory: pytest.TempPathFactory):
    """Two waves: board-a (migrating, with runs and events) and board-b (never run)."""
    folder = tmp_path_factory.mktemp("board-waves")
    write(folder, small_wave("w", "board-a"))
    write(folder, small_wave("w", "board-b"))
    before = os.environ.get("SLOW_INJECTION_WAVES_DIR")
    os.environ["SLOW_INJECTION_WAVES_DIR"] = str(folder)
    from slow_injection_board import board

    board.clear_cache()
    yield folder
    if before is None:
        os.environ.pop("SLOW_INJECTION_WAVES_DIR", None)
    else:
        os.environ["SLOW_INJECTION_WAVES_DIR"] = before
    board.clear_cache()


@pytest.fixture(scope="module")
def auth_manager(airflow_db):
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()  # the configured one: SimpleAuthManager, users "admin:admin"


@pytest.fixture(scope="module")
def token(auth_manager) -> str:
    """A JWT minted exactly as POST /auth/token does for the simple auth manager's admin."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


@pytest.fixture(scope="module")
def client(waves_folder, auth_manager):
    from fastapi.testclient import TestClient

    from slow_injection_board.app import create_app

    return TestClient(create_app())


@pytest.fixture(scope="module")
def migrating(airflow_db, waves_folder) -> None:
    """board-a: an older run, then the latest run with verdicts; web's asset moved 25 % → 100 %."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from include.slow_injection.assets import service_asset, wave_asset

    dag_id = "wave_board-a"
    with create_session() as session:
        for run_id, after in ((OLD_RUN, T0), (RUN, T0 + timedelta(days=1))):
            session.add(
                DagRun(
                    dag_id=dag_id,
                    run_id=run_id,
                    run_type="manual",
                    state="failed" if run_id == RUN else "success",
                    run_after=after,
                    start_date=after,
                )
            )
        session.flush()

        def verdict(run_id: str, task_id: str, value: dict[str, Any], *, as_task_api: bool = True) -> None:
            # Tasks push through the Execution API, which stores the JSON value as is; the ORM's
            # XComModel.set(serialize=True) stores a JSON string. The board must read both.
            task_instance(session, dag_id, run_id, task_id)
            XComModel.set(
                "verdict",
                value,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                serialize=not as_task_api,
                session=session,
            )

        verdict(
            OLD_RUN,
            "gradual_transition.web.step1_25pct.gate_error-rate",
            {"gate": "error-rate", "kind": "metric", "service": "web", "status": "pass", "reason": "old run"},
        )
        verdict(
            RUN,
            "migrate_scheduled_jobs.report-job.handover.gate_job-failures",
            {"gate": "job-failures", "kind": "metric", "status": "pass", "reason": "0 failures"},
        )
        verdict(
            RUN,
            "gradual_transition.web.step1_25pct.gate_error-rate",
            {
                "gate": "error-rate",
                "kind": "metric",
                "service": "web",
                "status": "pass",
                "reason": "0.001 < 0.01 in 2 of 2 readings",
            },
        )
        verdict(
            RUN,
            "gradual_transition.web.step2_100pct.gate_error-rate",
            {
                "gate": "error-rate",
                "kind": "metric",
                "status": "fail",
                "reason": "0.2 >= 0.01 <script>alert(1)</script>",
            },
            as_task_api=False,
        )
        verdict(
            RUN,
            "release_monitoring.gate_release-errors",
            {"gate": "release-errors", "kind": "metric", "service": None, "status": "pass", "reason": "ok"},
        )
        task_instance(session, dag_id, RUN, "gradual_transition.web.step1_25pct.set_traffic")
        XComModel.set(
            "return_value",
            {"status": "not a verdict"},
            dag_id=dag_id,
            task_id="gradual_transition.web.step1_25pct.set_traffic",
            run_id=RUN,
            session=session,
        )

        def asset(definition: Any) -> AssetModel:
            model = AssetModel(name=definition.name, uri=definition.uri, group=definition.group)
            session.add(model)
            session.flush()
            return model

        web, job = asset(service_asset("board-a", "web")), asset(service_asset("board-a", "report-job"))
        done = asset(wave_asset("board-a"))
        for n, weight in enumerate((25, 100)):
            at = T0 + timedelta(days=1, minutes=n)
            session.add(
                AssetEvent(
                    asset_id=web.id,
                    timestamp=at,
                    source_dag_id=dag_id,
                    source_run_id=RUN,
                    source_task_id=f"gradual_transition.web.step{n + 1}_{weight}pct.set_traffic",
                    extra={
                        "wave": "board-a",
                        "service": "web",
                        "env": "split" if weight < 100 else "green",
                        "weight": weight,
                        "run_id": RUN,
                        "at": at.timestamp(),
                        "task_id": f"gradual_transition.web.step{n + 1}_{weight}pct.set_traffic",
                    },
                )
            )
        session.add(
            AssetEvent(
                asset_id=job.id,
                timestamp=T0 + timedelta(days=1),
                source_dag_id=dag_id,
                source_run_id=RUN,
                extra={"wave": "board-a", "service": "report-job", "env": "green", "weight": None, "run_id": RUN},
            )
        )
        session.add(
            AssetEvent(
                asset_id=done.id,
                timestamp=T0,
                source_dag_id=dag_id,
                source_run_id=OLD_RUN,
                extra={"wave": "board-a", "outcome": "completed", "run_id": OLD_RUN},
            )
        )


def task_instance(session: Any, dag_id: str, run_id: str, task_id: str) -> None:
    """The task instance row an XCom belongs to (its foreign key)."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import insert

    session.execute(
        insert(TaskInstance).values(
            dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1, pool="default_pool", state="success"
        )
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the plugin ----------------------------------------------------------------------------------


def test_the_plugin_mounts_one_app_and_adds_a_nav_view_and_a_run_tab() -> None:
    from slow_injection_board.board_plugin import SlowInjectionBoardPlugin

    (app,) = SlowInjectionBoardPlugin.fastapi_apps
    assert app["url_prefix"] == "/slow-injection" and app["name"] == "Slow Injection"
    views = {v["destination"]: v for v in SlowInjectionBoardPlugin.external_views}
    assert views["nav"]["name"] == "Migration board" and views["nav"]["href"] == "/slow-injection/board"
    # The UI replaces {DAG_ID} and {RUN_ID} (encodeURIComponent) in views on a DAG run.
    assert views["dag_run"]["href"] == "/slow-injection/reports/{DAG_ID}/{RUN_ID}"
    assert all(v.get("url_route") for v in views.values())


def test_airflow_loads_only_the_plugin_module_from_the_package() -> None:
    """Airflow imports every .py in plugins/ as a top-level module: the rest must be ignored."""
    ignored = {
        line.strip()
        for line in (PLUGIN_DIR / ".airflowignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {p.name for p in PLUGIN_DIR.glob("*.py")} - ignored == {"board_plugin.py"}


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/board", "/api/board", f"/reports/wave_board-a/{RUN}", f"/reports/wave_board-a/{RUN}/report.json"]
)
def test_anonymous_requests_get_401_and_a_bad_token_403(client, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer("not-a-jwt")).status_code == 403
    client.cookies.set("_token", "not-a-jwt")
    try:
        assert client.get(path).status_code == 403
    finally:
        client.cookies.clear()


def test_the_ui_session_cookie_is_enough(client, token: str) -> None:
    client.cookies.set("_token", token)  # what the browser sends to the UI's iframe
    try:
        response = client.get("/board")
    finally:
        client.cookies.clear()
    assert response.status_code == 200 and "Migration board" in response.text


# --- the board -----------------------------------------------------------------------------------


def test_the_board_shows_where_each_service_runs_and_its_latest_verdicts(client, token: str, migrating) -> None:
    response = client.get("/api/board", headers=bearer(token))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["spec_errors"] == []
    waves = {w["wave"]: w for w in data["waves"]}
    assert list(waves) == ["board-a", "board-b"]
    a = waves["board-a"]
    assert a["latest_run"]["run_id"] == RUN and a["latest_run"]["state"] == "failed"
    assert a["latest_run"]["url"] == "/dags/wave_board-a/runs/manual__2026-01-06T09%3A00%3A00%2B00%3A00"
    assert (
        a["latest_run"]["report_url"]
        == "/slow-injection/reports/wave_board-a/manual__2026-01-06T09%3A00%3A00%2B00%3A00"
    )
    assert a["completed"]["run_id"] == OLD_RUN
    assert [v["gate"] for v in a["verdicts"]] == ["release-errors"]  # wave-level gates on the wave row

    services = {s["service"]: s for s in a["services"]}
    web, job = services["web"], services["report-job"]
    assert (web["exposure"], web["env"], web["weight"], web["where"]) == ("exposed", "green", 100, "green")
    assert web["by_task"] == "gradual_transition.web.step2_100pct.set_traffic"
    assert web["by_run_url"] == a["latest_run"]["url"]
    # Both steps' verdicts of the latest run, in order; the older run's are not shown. The second one
    # names no service: the DAG's structure (TaskGroup web) says whose it is.
    assert [(v["task_id"], v["status"]) for v in web["verdicts"]] == [
        ("gradual_transition.web.step1_25pct.gate_error-rate", "pass"),
        ("gradual_transition.web.step2_100pct.gate_error-rate", "fail"),
    ]
    assert web["verdicts"][1]["reason"].startswith("0.2 >= 0.01")
    assert web["run_url"] == a["latest_run"]["url"] and web["report_url"] == a["latest_run"]["report_url"]
    assert (job["exposure"], job["env"], job["weight"], job["where"]) == ("scheduled", "green", None, "green")
    assert [v["gate"] for v in job["verdicts"]] == ["job-failures"]

    b = waves["board-b"]
    assert b["latest_run"] is None and b["completed"] is None
    assert [(s["service"], s["env"], s["started"], s["where"]) for s in b["services"]] == [
        ("report-job", "blue", False, "blue (not started)"),
        ("web", "blue", False, "blue (not started)"),
    ]
    assert all(s["verdicts"] == [] and s["run_url"] is None for s in b["services"])


def test_the_board_page_is_a_readable_escaped_table_per_wave(client, token: str, migrating) -> None:
    response = client.get("/board", headers=bearer(token))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<h2>Wave board-a" in html and "<h2>Wave board-b" in html
    assert '<span class="env env-green">green</span>' in html
    assert '<span class="env env-none">blue (not started)</span>' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="/dags/wave_board-a/runs/manual__2026-01-06T09%3A00%3A00%2B00%3A00"' in html
    assert 'href="/slow-injection/reports/wave_board-a/manual__2026-01-06T09%3A00%3A00%2B00%3A00"' in html
    assert "location.reload" in html  # refreshes itself


def test_a_broken_wave_spec_is_listed_on_the_board(client, token: str, waves_folder: Path) -> None:
    from slow_injection_board import board

    broken = small_wave("w", "board-z")
    broken["services"][1]["gates"][0]["threshold"] = "five"
    path = write(waves_folder, broken)
    board.clear_cache()
    try:
        data = client.get("/api/board", headers=bearer(token)).json()
    finally:
        path.unlink()
        board.clear_cache()
    assert [w["wave"] for w in data["waves"]] == ["board-a", "board-b"]
    assert len(data["spec_errors"]) == 1 and "board-z.yaml" in data["spec_errors"][0]


# --- reports -------------------------------------------------------------------------------------


@pytest.fixture
def report_folder(reports_dir: Path) -> Path:
    folder = reports_dir / "wave_board-a" / RUN.replace(":", "_")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text("# Wave board-a\n\n**Outcome: rolled back** <b>x</b>\n")
    (folder / "report.json").write_text(json.dumps({"wave": "board-a", "outcome": "rolled back"}))
    yield folder
    for name in ("report.html", "report.md", "report.json"):
        (folder / name).unlink(missing_ok=True)


def test_a_runs_report_is_served_by_name_and_html_by_default(client, token: str, report_folder: Path) -> None:
    (report_folder / "report.html").write_text("<h1>Evaluation</h1>")
    base = f"/reports/wave_board-a/{RUN}"
    page = client.get(base, headers=bearer(token))
    assert page.status_code == 200 and page.text == "<h1>Evaluation</h1>"
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("sandbox")
    # The UI fills {RUN_ID} in with encodeURIComponent: the encoded form is the same report.
    encoded = client.get("/reports/wave_board-a/manual__2026-01-06T09%3A00%3A00%2B00%3A00", headers=bearer(token))
    assert encoded.status_code == 200 and encoded.text == page.text
    assert client.get(f"{base}/report.json", headers=bearer(token)).json()["outcome"] == "rolled back"
    markdown = client.get(f"{base}/report.md", headers=bearer(token))
    assert markdown.status_code == 200 and markdown.text.startswith("# Wave board-a")


def test_without_report_html_the_markdown_is_shown_and_a_missing_report_is_a_clear_404(
    client, token: str, report_folder: Path
) -> None:
    page = client.get(f"/reports/wave_board-a/{RUN}", headers=bearer(token))
    assert page.status_code == 200 and "Outcome: rolled back" in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
    missing = client.get(f"/reports/wave_board-a/{RUN}/report.html", headers=bearer(token))
    assert missing.status_code == 404 and "no report.html for run" in missing.text
    gone = client.get(f"/reports/wave_board-a/{OLD_RUN}/report.json", headers=bearer(token))
    assert gone.status_code == 404
    assert gone.json()["detail"].startswith(f"no report.json for run '{OLD_RUN}' of wave_board-a")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/reports/wave_board-a/{RUN}/report.txt", 404),  # only the three report names
        (f"/reports/wave_board-a/{RUN}/..", 404),
        (f"/reports/wave_board-a/{RUN}/%2E%2E", 404),
        (f"/reports/wave_board-a/{RUN}/..%2F..%2Fsecret.html", 404),
        ("/reports/wave_board-a/%2E%2E/report.md", 400),
        ("/reports/wave_board-a/..%2F..%2Fwave_board-b/report.md", 404),  # '/' in a segment: no route
        ("/reports/wave_board-a/x%20y/report.md", 400),
        (f"/reports/wave_other/{RUN}/report.md", 404),  # not a wave DAG
        (f"/reports/%2E%2E/{RUN}/report.md", 404),
    ],
)
def test_report_routes_refuse_anything_but_a_wave_runs_report(
    client, token: str, report_folder: Path, path: str, status: int
) -> None:
    (report_folder.parent / "secret.html").write_text("secret")
    try:
        response = client.get(path, headers=bearer(token))
    finally:
        (report_folder.parent / "secret.html").unlink()
    assert response.status_code == status, response.text
    assert "secret" not in response.text and "Outcome" not in response.text


# --- hostile text: every page shows it only escaped ------------------------------------------------

# A hostile value that fits in a URL path segment (no '/'), for what reaches a page from the URL.
HOSTILE_IN_PATH = '<img src=x onerror=alert(1)>" onmouseover="x'
# Where the board page shows a board's value: paths into /api/board's JSON (* one step, ** any).
SHOWN_ON_THE_BOARD = [
    "board.generated_at",
    "board.spec_errors.*",
    "board.waves.*.wave",
    "board.waves.*.dag_id",
    "board.waves.*.owner",
    "board.waves.*.description",
    "board.waves.*.latest_run.run_id",
    "board.waves.*.latest_run.state",
    "board.waves.*.latest_run.url",
    "board.waves.*.latest_run.report_url",
    "board.waves.*.completed.at",
    *(
        f"board.waves.*.services.*.{key}"
        for key in ("service", "exposure", "env", "where", "weight", "since", "by_run", "by_run_url")
    ),
    *(f"board.waves.**.verdicts.*.{key}" for key in ("task_id", "gate", "status", "reason")),
]


def made_hostile(value: Any, path: str, fields: dict[str, str]) -> Any:
    """value with each string in it replaced by its path and HOSTILE (fields: path → that string)."""
    if isinstance(value, dict):
        return {k: made_hostile(v, f"{path}.{k}", fields) for k, v in value.items()}
    if isinstance(value, list):
        return [made_hostile(v, f"{path}.{i}", fields) for i, v in enumerate(value)]
    if isinstance(value, str):
        fields[path] = f"{path} {HOSTILE}"
        return fields[path]
    return value


def only_escaped(page: str, *, scripts: int = 0) -> Parsed:
    """The page, parsed: no element or attribute came from the text put into it."""
    parsed = Parsed(page)
    assert parsed.tags.count("script") == page.count("<script") == scripts
    assert "img" not in parsed.tags and not [name for name, _ in parsed.attributes if name.startswith("on")]
    assert HOSTILE not in page and HOSTILE_IN_PATH not in page and '" onmouseover' not in page
    return parsed


def test_a_hostile_string_in_any_field_appears_on_the_board_only_escaped(client, token: str, migrating) -> None:
    from slow_injection_board import pages

    board = client.get("/api/board", headers=bearer(token)).json()
    board["spec_errors"] = ["board-z.yaml: threshold: not a number"]
    for wave in board["waves"]:
        for svc in wave["services"]:
            svc.update(started=True, weight="50")  # an asset event's extra may hold any JSON
    fields: dict[str, str] = {}
    parsed = only_escaped(pages.board_page(made_hostile(board, "board", fields)), scripts=1)  # its own script
    for pattern in SHOWN_ON_THE_BOARD:
        steps = re.escape(pattern).replace(r"\*\*", ".+").replace(r"\*", "[^.]+")
        matching = [path for path in fields if re.fullmatch(steps, path)]
        assert matching, pattern  # the board has such a field (a wave owner, a run id, a gate's reason...)
        assert [path for path in matching if not parsed.shows(fields[path])] == []


def test_a_hostile_string_in_a_message_page_appears_only_escaped(client, token: str) -> None:
    from slow_injection_board import pages

    parsed = only_escaped(pages.message_page(f"title {HOSTILE}", f"message {HOSTILE}"))
    assert parsed.shows(f"title {HOSTILE}") and parsed.shows(f"message {HOSTILE}")
    # What a request's URL puts into the page: an unknown DAG, an invalid run id.
    for path in (
        f"/reports/{quote(HOSTILE_IN_PATH, safe='')}/{RUN}/report.html",
        f"/reports/wave_board-a/{quote(HOSTILE_IN_PATH, safe='')}/report.html",
    ):
        response = client.get(path, headers=bearer(token))
        assert response.status_code in (400, 404) and response.headers["content-type"].startswith("text/html")
        assert only_escaped(response.text).shows(HOSTILE_IN_PATH), response.text


def test_a_hostile_string_in_a_markdown_page_appears_only_escaped(client, token: str, report_folder: Path) -> None:
    from slow_injection_board import pages

    page = pages.markdown_page(f"title {HOSTILE}", f"# Wave\n\n{HOSTILE}\n", f"note {HOSTILE}")
    parsed = only_escaped(page)
    assert all(parsed.shows(f"{field} {HOSTILE}") for field in ("title", "note"))
    assert f"# Wave\n\n{HOSTILE}\n" in parsed.text  # the report.md's text, as it is
    (report_folder / "report.md").write_text(f"# Wave board-a\n\n{HOSTILE}\n")  # a task wrote it from a spec
    response = client.get(f"/reports/wave_board-a/{RUN}", headers=bearer(token))
    assert response.status_code == 200 and f"# Wave board-a\n\n{HOSTILE}\n" in only_escaped(response.text).text


# --- mounted by Airflow; after a real wave run ----------------------------------------------------


def test_airflow_mounts_the_app_under_its_prefix_and_links_follow_the_base_url(
    token: str, auth_manager, migrating
) -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    api = FastAPI(root_path="/airflow")  # as the API server is built for [api] base_url http://host/airflow
    init_plugins(api)  # what create_app() does with the plugins folder's fastapi_apps
    client = TestClient(api)
    assert client.get("/airflow/slow-injection/api/board").status_code == 401
    data = client.get("/airflow/slow-injection/api/board", headers=bearer(token)).json()
    run = next(w for w in data["waves"] if w["wave"] == "board-a")["latest_run"]
    assert run["url"].startswith("/airflow/dags/wave_board-a/runs/manual__")
    assert run["report_url"].startswith("/airflow/slow-injection/reports/wave_board-a/manual__")
    views = {v["url_route"]: v for v in plugins_manager._get_ui_plugins()[0]}
    assert views["migration-board"]["destination"] == "nav"
    assert views["evaluation-report"]["destination"] == "dag_run"


def test_a_wave_run_by_dag_test_shows_on_the_board_with_its_report(tmp_path: Path, world, client, token: str) -> None:
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_wave
    from slow_injection_board import board

    world.reset(healthy_world())
    dag = build_dag(load_wave(write(tmp_path, small_wave(world.path.stem, "board-run"))))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))  # dag.test() re-parses dags/
        run = dag.test()
        board.clear_cache()
        try:
            data = client.get("/api/board", headers=bearer(token)).json()
            report = client.get(f"/reports/wave_board-run/{run.run_id}/report.md", headers=bearer(token))
        finally:
            board.clear_cache()
    assert run.state == "success"
    (wave,) = data["waves"]
    assert wave["latest_run"]["run_id"] == run.run_id and wave["latest_run"]["state"] == "success"
    services = {s["service"]: s for s in wave["services"]}
    web = services["web"]
    assert [v["task_id"] for v in web["verdicts"] if v["kind"] == "metric"] == [
        "gradual_transition.web.step1_25pct.gate_error-rate",
        "gradual_transition.web.step2_100pct.gate_error-rate",
    ]
    assert all(v["status"] == "pass" for s in services.values() for v in s["verdicts"])
    assert "migrate_scheduled_jobs.report-job.handover.gate_job-failures" in [
        v["task_id"] for v in services["report-job"]["verdicts"]
    ]
    assert [v["gate"] for v in wave["verdicts"]] == ["release-errors"]
    # The wave's tasks emit the service assets' events (include/slow_injection/assets.py).
    assert (web["env"], web["weight"], services["report-job"]["env"]) == ("green", 100, "green")
    assert report.status_code == 200 and report.text.startswith("# Wave board-run")
