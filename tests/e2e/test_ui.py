"""The Airflow UI in a real (headless) browser against the e2e stack: signing in through the login form,
triggering a wave from its trigger form, the Migration board and a run's Evaluation report (the Slow
Injection UI plugin, plugins/slow_injection_board).

Screenshots go to a temporary folder; `SLOW_INJECTION_SCREENSHOTS=1` also copies them to docs/screenshots/.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from include.slow_injection.drivers.simulated import SimulatedWorld
from tests.support.browser import Screenshots, chromium, fit_viewport, login, new_page
from tests.support.waves import healthy_world

pytestmark = pytest.mark.e2e

DAG = "wave_e2e-web"  # the lab wave: its board rows and (after tests/e2e/test_lab_waves.py) its real runs
TRIGGER_DAG = "wave_e2e-uat"  # a small simulated wave: a dry run from the form ends in seconds
RUN_TIMEOUT = 300
BOARD = "/slow-injection/board"
REPORT = "/slow-injection/reports/{dag_id}/{run_id}"
RUNS: dict[str, str] = {}  # the dry run triggered from the form, reused by the report test


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    return Screenshots(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture(scope="module")
def signed_in(browser, lab_stack):
    """A browser context signed in once through the login form, shared by the module's tests."""
    page = new_page(browser, lab_stack.airflow.url)
    login(page, "admin", lab_stack.airflow.password)
    yield page.context
    page.context.close()


@pytest.fixture
def page(signed_in):
    page = signed_in.new_page()
    yield page
    page.close()


def http_get(airflow, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of an authenticated GET, whatever the status."""
    request = urllib.request.Request(airflow.url + path, headers={"Authorization": f"Bearer {airflow.token()}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode(errors="replace")


def is_airflow_ui_page(body: str) -> bool:
    """The API server answers any path nothing else serves with the UI's own index.html (status 200)."""
    return "<base href=" in body and 'id="root"' in body


def unsubmittable_params(airflow) -> list[str]:
    """Params the trigger form treats as required but empty (type without "null", value None or ""):
    with any of them the form's Trigger button stays disabled."""
    params = airflow.get(f"/api/v2/dags/{TRIGGER_DAG}/details")["params"]
    out = []
    for name, param in params.items():
        kind = param.get("schema", {}).get("type")
        required = bool(kind) and not (isinstance(kind, list) and "null" in kind)
        if required and param.get("value") in (None, ""):
            out.append(f"{name} (type {kind!r}, default {param.get('value')!r})")
    return out


def trigger_dialog(page):
    page.goto(f"/dags/{TRIGGER_DAG}")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("heading", name=re.compile("Trigger Dag")))
    expect(dialog).to_be_visible()
    return dialog


def test_signing_in_through_the_login_form_shows_the_wave_dags(browser, lab_stack, shots) -> None:
    page = new_page(browser, lab_stack.airflow.url)
    try:
        login(page, "admin", lab_stack.airflow.password)  # "/" redirects to the form; Sign in leaves it
        page.get_by_role("link", name="Dags", exact=True).first.click()
        expect(page).to_have_url(re.compile(r"/dags$"))
        # the DAG's own link (once it has runs, its latest run's task links carry its name too)
        expect(page.locator(f'a[href$="/dags/{DAG}"]', has_text=DAG).first).to_be_visible()
        shots.take(page, "dag-list")
    finally:
        page.context.close()


def test_a_dry_run_triggered_from_the_form_runs_with_dry_run_on(lab, page, shots) -> None:
    airflow = lab.airflow
    SimulatedWorld("e2e-uat").reset(healthy_world())  # so the run can end well (the report test may read it)
    dialog = trigger_dialog(page)
    # Only the Dry run switch is touched: every other Param keeps its default.
    dry_run = dialog.locator("input[name=element_dry_run]")
    if not dry_run.is_checked():
        dialog.locator("[id='switch:element_dry_run']").click()
    expect(dry_run).to_be_checked()
    fit_viewport(page, dialog)
    shots.take(dialog, "trigger-form")
    submit = page.get_by_test_id("trigger-dag-submit")
    try:
        expect(submit).to_be_enabled(timeout=5_000)
    except AssertionError:
        pytest.fail(
            "the trigger form cannot be submitted with its defaults (Trigger stays disabled); params "
            f"the form requires but leave empty: {unsubmittable_params(airflow) or 'none found'} — a "
            'Param that may be empty needs type=["null", ...] and default None',
            pytrace=False,
        )
    submit.click()

    expect(page.get_by_text("Dag Run Triggered").first).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/dags/{TRIGGER_DAG}/runs/manual__"))
    run_id = urllib.parse.unquote(urllib.parse.urlsplit(page.url).path.split("/runs/", 1)[1].split("/")[0])
    RUNS["dry_run"] = run_id

    run = airflow.get(f"/api/v2/dags/{TRIGGER_DAG}/dagRuns/{urllib.parse.quote(run_id)}")
    assert run["run_type"] == "manual" and run["conf"]["dry_run"] is True, run["conf"]
    # It started: plan_wave accepted the form and branched into the wave (the run itself is the
    # e2e trigger-form tests' business; the report test below waits for it when it needs it).
    deadline = time.time() + RUN_TIMEOUT
    while (tis := airflow.task_instances(TRIGGER_DAG, run_id)).get("preparation.preflight", {}).get("state") in (
        None,
        "scheduled",
        "queued",
        "none",
    ):
        assert tis.get("preparation.plan_wave", {}).get("state") != "failed", tis["preparation.plan_wave"]
        assert time.time() < deadline, {t: ti["state"] for t, ti in tis.items() if ti["state"]}
        time.sleep(1)
    assert tis["preparation.plan_wave"]["state"] == "success"
    assert tis["preparation.run_refused"]["state"] == "skipped"


def test_the_migration_board_in_the_nav_shows_the_lab_services(page, lab_stack, shots) -> None:
    status, _, body = http_get(lab_stack.airflow, BOARD)
    assert status == 200, f"{BOARD} answered {status}: {body[:300]}"
    assert not is_airflow_ui_page(body), (
        f"{BOARD} answers with Airflow's own UI page: the plugin's FastAPI app "
        "is not mounted (plugins/slow_injection_board)"
    )

    page.goto("/")
    page.get_by_role("link", name="Migration board").first.click()
    expect(page).to_have_url(re.compile(r"/plugin/migration-board"))
    board = page.frame_locator("iframe").first
    expect(board.get_by_role("heading", name="Migration board", level=1)).to_be_visible()
    wave = board.get_by_role("heading", name=re.compile(r"^Wave e2e-web\b"))
    expect(wave).to_be_visible()
    table = wave.locator("xpath=following-sibling::table[1]")
    for service in ("report", "web"):  # e2e-web moves the lab wave's CronJob and web service
        expect(table.get_by_role("cell", name=service, exact=True)).to_be_visible()
    fit_viewport(page, board.locator("body"))  # the iframe fills the window: show every wave it can
    table.scroll_into_view_if_needed()  # more waves than the tallest viewport: the lab wave's rows in the shot
    expect(table).to_be_in_viewport()
    shots.take(page, "migration-board")


@pytest.fixture
def reported_run(lab_stack) -> tuple[str, str]:
    """The lab wave's latest successful run (real traffic and metrics: the e2e wave tests ran before),
    else the dry run the trigger-form test started, else one started here through REST."""
    airflow = lab_stack.airflow
    runs = airflow.get(f"/api/v2/dags/{DAG}/dagRuns?state=success&order_by=-start_date&limit=20")["dag_runs"]
    moved = [r for r in runs if not (r.get("conf") or {}).get("dry_run")]  # a run whose traffic really moved
    if moved or runs:
        return DAG, (moved or runs)[0]["dag_run_id"]
    run_id = RUNS.get("dry_run") or airflow.trigger(TRIGGER_DAG, {"dry_run": True})
    state = airflow.wait_for_run(TRIGGER_DAG, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", f"the dry run {run_id} ended {state}"
    return TRIGGER_DAG, run_id


def test_the_evaluation_report_of_a_run_shows_plots(page, lab_stack, reported_run, shots) -> None:
    dag_id, run_id = reported_run
    path = REPORT.format(dag_id=dag_id, run_id=urllib.parse.quote(run_id, safe=""))
    status, kind, body = http_get(lab_stack.airflow, path)
    assert status == 200, f"{path} answered {status}: {body[:400]}"
    assert not is_airflow_ui_page(body), f"{path} answers with Airflow's own UI page: the plugin is not mounted"
    assert "<svg" in body and "<polyline" in body, "the run's report.html has no inline SVG plot"

    page.goto(f"/dags/{dag_id}/runs/{urllib.parse.quote(run_id)}")
    # the plugin's tab appears once the UI has fetched the plugins (over 30 s in a loaded CI run: 2026-12-05)
    tab = page.get_by_role("link", name="Evaluation report").first
    expect(tab).to_be_visible(timeout=120_000)
    tab.click()
    expect(page).to_have_url(re.compile(r"/plugin/evaluation-report"))
    report = page.frame_locator("iframe").first
    expect(report.get_by_role("heading", level=1)).to_contain_text(run_id)
    plots = report.locator("svg:has(polyline)")
    expect(plots.first).to_be_visible()
    assert plots.count() >= 1
    shots.take(page, "evaluation-report")
