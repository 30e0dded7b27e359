"""Slow Injection's UI plugin: the "Migration board" nav entry and an "Evaluation report" tab on
every DAG run, both served by one FastAPI app under /slow-injection (see slow_injection_board/app.py).

Every Airflow process loads plugins (tasks too), so this module imports nothing heavy: the FastAPI
app is built on the API server's first request to it.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from slow_injection_board import URL_PREFIX


class LazyApp:
    """An ASGI app that builds the real FastAPI app (FastAPI + Airflow's API security stack) once,
    on first use."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from slow_injection_board.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


app = LazyApp()
# Hrefs are used as given by the UI: prefix them with the path of [api] base_url, if any.
_root = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class SlowInjectionBoardPlugin(AirflowPlugin):
    name = "slow_injection_board"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Slow Injection"}]
    external_views = [
        {
            "name": "Migration board",
            "href": f"{_root}{URL_PREFIX}/board",
            "destination": "nav",
            "url_route": "migration-board",
            "nav_top_level": True,
        },
        # The UI fills {DAG_ID} and {RUN_ID} in (URI-encoded) for views on a DAG run.
        {
            "name": "Evaluation report",
            "href": f"{_root}{URL_PREFIX}/reports/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "evaluation-report",
        },
    ]
