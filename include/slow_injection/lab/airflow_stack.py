"""Real Airflow components (API server, scheduler, dag-processor, triggerer) on a throwaway PostgreSQL, with a
REST client that triggers and follows runs the way the UI does. LocalExecutor, or CeleryExecutor with a Redis
broker (Debian's redis-server on loopback) and two Celery workers, with the settings docker-compose.yaml's
`celery` profile runs (deploy/celery.env)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from include.slow_injection.lab.free_ports import free_port
from include.slow_injection.lab.lab import binary, ensure_binaries
from include.slow_injection.lab.postgres import Postgres
from include.slow_injection.lab.processes import ProcessBook
from include.slow_injection.lab.worker_host import WORKER_NAME
from include.slow_injection.spec.loader import PROJECT_ROOT

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
CELERY_ENV = PROJECT_ROOT / "deploy" / "celery.env"  # also docker-compose.yaml's env_file
CELERY_WORKERS = ("worker-a", "worker-b")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments skipped). Quotes, `$` and inline comments are refused:
    Compose would interpolate or strip them, so the lab and a container would not read the same value."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key or key != key.strip() or value != value.strip() or any(c in line for c in "'\"$#"):
            raise ValueError(
                f"{path}, line {number}: {raw!r} is not KEY=VALUE without spaces around '=', quotes, $ or #"
            )
        settings[key] = value
    return settings


class AirflowStack:
    def __init__(
        self,
        root: Path,
        waves_dir: Path,
        extra_env: dict[str, str] | None = None,
        api_port: int | None = None,
        executor: str = "LocalExecutor",
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
        self.executor = executor
        # CeleryExecutor: a Redis broker and two workers on loopback, started with the other components
        self.workers = CELERY_WORKERS if executor == "CeleryExecutor" else ()
        self.redis_port = free_port() if self.workers else None
        self.root = root.resolve()
        self.waves_dir = waves_dir.resolve()
        self.api_port = api_port or free_port()
        self.postgres = Postgres(self.root / "postgres")
        self.book = ProcessBook(self.root / "airflow-pids.json")
        self.password = secrets.token_urlsafe(12)
        self.extra_env = extra_env or {}
        self._token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        home = self.root / "airflow"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": "6",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API_AUTH__JWT_SECRET": "slow-injection-lab-" + self.password,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # New files are parsed at once (refresh 5 s); known files are not re-parsed every few seconds,
                # which on 2 cores took a core away from the runs (several waves of ~70 tasks each).
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                # A killed scheduler takes its LocalExecutor workers with it: their tasks are reset or failed
                # (and retried) within about a minute instead of five (tests/e2e/test_resilience_drills.py).
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # config/ holds airflow_local_settings.py (warms the platform clients in the scheduler)
                "PYTHONPATH": os.pathsep.join(
                    [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "config")]
                ),
                "SLOW_INJECTION_WAVES_DIR": str(self.waves_dir),
                "SLOW_INJECTION_REPORTS_URL": f"file://{self.root / 'reports'}",
                **self.celery_env(),
                **self.extra_env,
            }
        )
        return env

    def celery_env(self) -> dict[str, str]:
        """deploy/celery.env (the compose profile's settings), and where this stack's broker and result backend
        are (a deployment's own: compose names its redis and postgres services)."""
        if not self.workers:
            return {}
        return {
            **read_env_file(CELERY_ENV),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.postgres.url}",
        }

    def airflow(self) -> str:
        return str(Path(sys.executable).with_name("airflow"))

    def start(self) -> None:
        self.stop()
        self.postgres.start()
        home = self.root / "airflow"
        home.mkdir(parents=True, exist_ok=True)
        (home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        env = self.env()
        subprocess.run([self.airflow(), "db", "migrate"], env=env, check=True, capture_output=True, cwd=PROJECT_ROOT)
        if self.workers:
            self._start_redis()
        for component in COMPONENTS:
            self._start(component, env)
        deadline = time.time() + 300  # a 2-core machine shared with other work: starting can take minutes
        while not self._healthy():
            if time.time() > deadline:
                raise TimeoutError(f"Airflow did not become healthy; logs in {self.root / 'logs'}")
            time.sleep(1)
        for worker in self.workers:
            self._start_worker(worker, env)
        for worker in self.workers:
            self._wait_for_worker(worker, deadline=time.time() + 180)

    def _healthy(self) -> bool:
        try:
            health = self.get("/api/v2/monitor/health", auth=False)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def stop(self) -> None:
        for worker in self.workers:  # with the task processes they started (each in a group of its own)
            self.book.stop_tree(worker)
        self.book.stop_all()
        self.postgres.stop()

    # --- CeleryExecutor ----------------------------------------------------------------------
    def _start_redis(self) -> None:
        """Debian's redis-server on loopback, nothing written to disk (a broker for one session)."""
        ensure_binaries({"redis-server": "redis-server"})
        folder = self.root / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        argv = [binary("redis-server") or "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        self.book.start("redis", argv, self.root / "logs" / "redis.log")
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"redis-server did not answer PING; log in {self.root / 'logs' / 'redis.log'}")
            time.sleep(0.2)

    def _start_worker(self, worker: str, env: dict[str, str]) -> None:
        """`airflow celery worker` under its own name: Celery's node name, and the hostname Airflow records
        on the task tries it runs (lab/worker_host.py). The task logs are files the API server reads
        itself, so no log server (two on one machine would want the same port)."""
        env = {
            **env,
            WORKER_NAME: worker,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.slow_injection.lab.worker_host.hostname",
        }
        argv = [self.airflow(), "celery", "worker", "--celery-hostname", f"{worker}@%h", "--skip-serve-logs"]
        self.book.start(worker, argv, self.root / "logs" / f"{worker}.log", env=env, cwd=PROJECT_ROOT)

    def _wait_for_worker(self, worker: str, deadline: float) -> None:
        log = self.root / "logs" / f"{worker}.log"
        ready = re.compile(rf"\b{re.escape(worker)}@\S+ ready\.")  # Celery's "worker-a@host ready."
        while not ready.search(log.read_text(errors="replace")):
            if time.time() > deadline or self.book.ours(worker) is None:
                raise TimeoutError(f"Celery worker {worker} did not get ready; log in {log}")
            time.sleep(0.5)

    def worker_running(self, pid: int) -> str | None:
        """The Celery worker whose process tree holds `pid` (a task process it started), if any."""
        return next((w for w in self.workers if pid in self.book.tree_of(w)), None)

    def kill_worker(self, worker: str) -> list[int]:
        """SIGKILL a Celery worker with every process it started (its pool, the task supervisors and task
        processes), as losing its machine would. Returns the PIDs killed."""
        if worker not in self.workers:
            raise ValueError(f"unknown Celery worker {worker!r}; one of {', '.join(self.workers) or 'none'}")
        return self.book.kill_tree(worker)

    def _start(self, component: str, env: dict[str, str] | None = None) -> None:
        self.book.start(
            component,
            [self.airflow(), component],
            self.root / "logs" / f"{component}.log",
            env=env or self.env(),
            cwd=PROJECT_ROOT,
        )

    # --- one component at a time (resilience drills) ------------------------------------------
    def kill(self, component: str) -> None:
        """SIGKILL one component's process group (a LocalExecutor scheduler's workers go with it), as a
        crash would: no clean shutdown, its job row stays `running` until its heartbeat goes stale."""
        if component not in COMPONENTS:
            raise ValueError(f"unknown Airflow component {component!r}; one of {', '.join(COMPONENTS)}")
        self.book.kill(component)

    def restart(self, *components: str, timeout: float = 180) -> None:
        """Start components again (all at once: a drill's outage is as short as their start-up) and wait
        until each one's new job heartbeats (the health endpoint shows the most recent job's heartbeat,
        so a killed one's stale beat does not count)."""
        unknown = [c for c in components if c not in COMPONENTS]
        if unknown:
            raise ValueError(f"unknown Airflow component(s) {unknown}; one of {', '.join(COMPONENTS)}")
        since = time.time()
        for component in components:
            self.book.stop(component)  # whatever is left of an earlier run of it
            self._start(component)
        waiting = set(components)
        deadline = time.time() + timeout
        while waiting and time.time() < deadline:
            try:
                health = self.get("/api/v2/monitor/health", auth=False)
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(1)
                continue
            for component in list(waiting):
                part = component.replace("-", "_")
                beat = (health.get(part) or {}).get(f"latest_{part}_heartbeat")
                if component == "api-server" or (beat and datetime.fromisoformat(beat).timestamp() > since):
                    waiting.discard(component)
            time.sleep(1)
        if waiting:
            raise TimeoutError(
                f"{', '.join(sorted(waiting))} did not heartbeat within {timeout:.0f}s of the restart; "
                f"logs in {self.root / 'logs'}"
            )

    # --- REST API v2, as the UI uses it ------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            reply = self._request("POST", "/auth/token", {"username": "admin", "password": self.password}, auth=False)
            self._token = reply["access_token"]
        return self._token

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def get(self, path: str, auth: bool = True) -> Any:
        return self._request("GET", path, auth=auth)

    def end_unfinished_runs(self, dag_ids: list[str]) -> None:
        """Mark every queued or running run failed (a test that failed half-way leaves none behind)."""
        for dag_id in dag_ids:
            try:
                reply = self.get(f"/api/v2/dags/{dag_id}/dagRuns?state=running&state=queued&limit=100")
            except urllib.error.HTTPError as err:
                if err.code == 404:  # not parsed (yet): no run either
                    continue
                raise
            for run in reply.get("dag_runs", []):
                self._request(
                    "PATCH",
                    f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}",
                    {"state": "failed"},
                )

    def forget_wave_states(self) -> None:
        """Drop every wave's completed mark (a lab reset puts the world back on blue)."""
        listed = self.get("/api/v2/variables?limit=1000")
        for variable in listed.get("variables", []):
            if variable["key"].startswith("slow_injection_"):
                self._request("DELETE", f"/api/v2/variables/{urllib.parse.quote(variable['key'], safe='')}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout:.0f}s")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """Every task instance of a run, page by page: the REST API returns at most [api]
        maximum_page_limit (100) a page, whatever `limit` asks (the lab wave has 102 tasks)."""
        found: dict[str, dict[str, Any]] = {}
        while True:
            reply = self.get(
                f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
                f"?limit=100&offset={len(found)}&order_by=id"
            )
            found.update({ti["task_id"]: ti for ti in reply["task_instances"]})
            if not reply["task_instances"] or len(found) >= reply["total_entries"]:
                return found

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}"
            f"/xcomEntries/{key}?deserialize=true"
        )
        try:
            return self.get(path).get("value")
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def answer_hitl(self, dag_id: str, run_id: str, task_id: str, option: str, timeout: float = 300) -> dict:
        """Answer a human-in-the-loop task as the UI would, once it is waiting for input. Airflow 3.3
        marks the task failed when an answer lands within ~0.5 s of it starting to wait (FIELD-NOTES):
        answer only after it has waited 2 s."""
        deadline, waiting_since = time.time() + timeout, None
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}"
        while time.time() < deadline:
            state = self.get(path)["state"]
            if state == "awaiting_input":
                waiting_since = waiting_since or time.time()
                if time.time() - waiting_since >= 2:
                    return self._request(
                        "PATCH", f"{path}/-1/hitlDetails", {"chosen_options": [option], "params_input": {}}
                    )
            elif state in ("success", "failed", "upstream_failed", "skipped"):
                raise RuntimeError(f"{task_id} ended {state} before it was answered")
            time.sleep(0.5)
        raise TimeoutError(f"{task_id} of {dag_id} did not wait for input within {timeout:.0f}s")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600, on_poll=None) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.run_state(dag_id, run_id)
            if on_poll:
                on_poll()
            if state in FINISHED:
                return state
            time.sleep(1)
        raise TimeoutError(f"run {run_id} of {dag_id} did not finish within {timeout:.0f}s")
