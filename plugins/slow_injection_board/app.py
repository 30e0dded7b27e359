"""The Migration board's FastAPI app, mounted by Airflow's API server under URL_PREFIX.

Every route requires Airflow's login through airflow.api_fastapi.core_api.security: a bearer token
or the UI's `_token` cookie (which the browser sends to the UI's iframe). No credential → 401, an
invalid token → 403. The board lists only waves whose DAG the user may read; a report needs read
access to its DAG.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from slow_injection_board import URL_PREFIX, board, pages, reports

# A report is written by tasks from spec and metric values: serve it sandboxed (an opaque origin
# that cannot act with the viewer's Airflow session), scripts allowed in case the page has some.
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-popups",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def roots(request: Request) -> tuple[str, str]:
    """(Airflow's root path, this app's root path) as mounted by the API server."""
    airflow_root = str(request.scope.get("app_root_path", "")).rstrip("/")
    app_root = str(request.scope.get("root_path", "")).rstrip("/")
    if not app_root.endswith(URL_PREFIX):  # served on its own (tests): links as the API server has them
        app_root = airflow_root + URL_PREFIX
    return airflow_root, app_root


def specs_or_503() -> board.Specs:
    try:
        return board.load_specs()
    except ImportError as err:
        raise HTTPException(
            503,
            f"the project's code is not importable by the API server ({err}); put the project root on its PYTHONPATH",
        ) from None


def build_board(request: Request, session: Any, user: Any) -> dict[str, Any]:
    specs_or_503()
    airflow_root, app_root = roots(request)
    return board.build_board(session, user, airflow_root=airflow_root, app_root=app_root)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Slow Injection",
        description="Migration board and evaluation reports",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/", include_in_schema=False)
    def index(request: Request, user: GetUserDep) -> RedirectResponse:
        return RedirectResponse(f"{roots(request)[1]}/board")

    @app.get("/board", response_class=HTMLResponse)
    def board_html(request: Request, session: SessionDep, user: GetUserDep) -> HTMLResponse:
        return HTMLResponse(
            pages.board_page(build_board(request, session, user)), headers={"Cache-Control": "no-store"}
        )

    @app.get("/api/board")
    def board_json(request: Request, session: SessionDep, user: GetUserDep) -> JSONResponse:
        return JSONResponse(build_board(request, session, user), headers={"Cache-Control": "no-store"})

    read_dag = [Depends(requires_access_dag("GET"))]  # reads the dag_id path parameter

    @app.get("/reports/{dag_id}/{run_id}", dependencies=read_dag)
    def report_default(dag_id: str, run_id: str) -> Response:
        return serve_report(dag_id, run_id, reports.DEFAULT, fallback=True)

    @app.get("/reports/{dag_id}/{run_id}/{name}", dependencies=read_dag)
    def report_named(dag_id: str, run_id: str, name: str) -> Response:
        return serve_report(dag_id, run_id, name, fallback=False)

    return app


def serve_report(dag_id: str, run_id: str, name: str, *, fallback: bool) -> Response:
    known = {w.dag_id for w in specs_or_503().waves}
    html_page = name == "report.html"
    try:
        reports.check(dag_id, run_id, name, known)
    except reports.Refused as err:
        return _not_served(err.status, str(err), html_page)
    text = reports.read(dag_id, run_id, name)
    if text is not None:
        return Response(text, media_type=reports.NAMES[name], headers=REPORT_HEADERS)
    if fallback and (markdown := reports.read(dag_id, run_id, "report.md")) is not None:
        note = "This run has no report.html; its report.md follows."
        return HTMLResponse(pages.markdown_page(f"{dag_id} {run_id}", markdown, note), headers=REPORT_HEADERS)
    message = (
        f"no {name} for run {run_id!r} of {dag_id} (looked in {reports.folder(dag_id, run_id)}); "
        "the run's post_release.evaluation_report task writes it when the run ends"
    )
    return _not_served(404, message, html_page)


def _not_served(status: int, message: str, html_page: bool) -> Response:
    if html_page:
        return HTMLResponse(pages.message_page("Report not available", message), status_code=status)
    return JSONResponse({"detail": message}, status_code=status)
