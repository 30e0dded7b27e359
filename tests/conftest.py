"""Test session: an isolated AIRFLOW_HOME (SQLite metadata DB) set before Airflow is imported."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

# Fixtures from tests/support/, for every test module (a module imports helpers from there, never fixtures).
pytest_plugins = [
    "tests.support.aws",
    "tests.support.aws_waves",
    "tests.support.e2e_job",
    "tests.support.kube",
    "tests.support.kube_support",
    "tests.support.reruns",
]

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="slow-injection-tests-"))

for _p in (str(ROOT / "plugins"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "SLOW_INJECTION_SIM_DIR": str(_HOME / "sim"),
        "SLOW_INJECTION_REPORTS_URL": f"file://{_HOME / 'reports'}",
    }
)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH")])
)


@pytest.fixture(scope="session")
def airflow_db():
    """A fresh metadata database, once per test session."""
    from airflow.utils import db

    db.resetdb()
    return True


@pytest.fixture(scope="session", autouse=True)
def _dag_test_polls_briefly():
    """Airflow's dag.test loop sleeps 1 s whenever no task is ready, so it settles a refused or rolled-back
    run one level of skipped tasks per second (tens of seconds). Its sleeps alone become 0.1 s polls of the
    same states; every other caller of time.sleep (our tasks included) sleeps as asked."""
    import time

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals.get("__name__") == "airflow.sdk.definitions.dag":
            seconds = min(seconds, 0.1)
        real_sleep(seconds)

    time.sleep = sleep
    yield
    time.sleep = real_sleep


@pytest.fixture(autouse=True)
def _fresh_wave_states(request):
    """A wave completed by an earlier test would make the next run of that wave id only verify."""
    if "airflow_db" in request.fixturenames:
        request.getfixturevalue("airflow_db")
        forget_wave_states()


@pytest.fixture
def world():
    """An empty simulated world with a name of its own."""
    from include.slow_injection.drivers.simulated import SimulatedWorld

    w = SimulatedWorld(f"t{uuid.uuid4().hex[:10]}")
    w.reset({})
    return w


def forget_wave_states() -> None:
    from airflow.models import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Variable).filter(Variable.key.like("slow_injection_%")).delete(synchronize_session=False)


@pytest.fixture
def reports_dir() -> Path:
    return _HOME / "reports"
