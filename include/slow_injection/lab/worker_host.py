"""The lab's Celery workers share one machine, so each would record the same hostname on the task tries it
runs. Each worker gets its own name instead (AIRFLOW__CORE__HOSTNAME_CALLABLE in the worker's environment),
as workers on separate machines would have: the REST API then shows which worker ran each try."""

from __future__ import annotations

import os
import socket

WORKER_NAME = "SLOW_INJECTION_WORKER_NAME"


def hostname() -> str:
    return os.environ.get(WORKER_NAME) or socket.getfqdn()
