"""Airflow's local-settings hook, used only to warm imports in the scheduler.

LocalExecutor workers are forked from the scheduler, and each task from a worker: a module the
scheduler imported costs a task nothing. The Kubernetes driver's client (`kubernetes`, plus
`kubernetes_asyncio`, which the cncf-kubernetes hook module imports) takes ~3.6 s to import on a
2-core machine — paid by every task that touches the platform, the rollback's first step included
(measured in `make drill`: detection → 100 % blue 7.8 s without this). Both are plain third-party
packages, so importing them while Airflow's settings load cannot cycle back into Airflow.
"""

from __future__ import annotations

import importlib
import sys

__all__: list[str] = []  # Airflow reads every public name here as a cluster policy: define none

WARM = ("kubernetes.client", "kubernetes_asyncio.client")

if sys.argv[1:2] == ["scheduler"]:
    for module in WARM:
        try:
            importlib.import_module(module)
        except ImportError:  # a deployment without the provider: nothing to warm
            pass
