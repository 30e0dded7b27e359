"""Bench-only profile of each task process (bench/orchestration_overhead.py puts this directory first on
the Airflow components' PYTHONPATH, with SLOW_INJECTION_BENCH_PROFILE naming a JSON-lines file).

Per task process it appends one line: the worker's DAG-file parse (task_runner.parse) and the part of it
spent importing modules (our packages and their libraries, first imported there), the task's execute
(task_runner._execute_task) and, inside execute, the time spent importing modules (the drivers, kinds and
their libraries, imported lazily when first used) and the time inside the simulated drivers' methods.
Only outermost imports and calls are timed, so nested ones are not counted twice. Nothing is loaded in
processes that never run a task: the hook waits for Airflow's task runner module to be imported.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import os
import sys
import time

_OUT = os.environ.get("SLOW_INJECTION_BENCH_PROFILE")
_DRIVERS = "include.slow_injection.drivers.simulated"
_RUNNER = "airflow.sdk.execution_time.task_runner"
_state = {"importing": 0, "calling": 0, "import_s": 0.0, "call_s": 0.0, "parse_s": 0.0, "measuring": False}
_parse = {"import_s": 0.0}
_patched: set[str] = set()


def _timed_import(original):
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if not _state["measuring"] or _state["importing"]:
            result = original(*args, **kwargs)
        else:
            _state["importing"] += 1
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                _state["importing"] -= 1
                _state["import_s"] += time.perf_counter() - start
        _patch_late()
        return result

    return wrapper


def _timed_call(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if _state["calling"]:
            return method(*args, **kwargs)
        _state["calling"] += 1
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _state["calling"] -= 1
            _state["call_s"] += time.perf_counter() - start

    return wrapper


def _patch_drivers(module) -> None:
    for cls in vars(module).values():
        if isinstance(cls, type) and cls.__module__ == module.__name__:
            for name, attr in list(vars(cls).items()):
                if callable(attr) and not name.startswith("__") and not isinstance(attr, (type, staticmethod)):
                    setattr(cls, name, _timed_call(attr))


def _patch_runner(runner) -> None:
    parse, execute = runner.parse, runner._execute_task

    def timed_parse(*args, **kwargs):
        _state.update(measuring=True, import_s=0.0)
        start = time.perf_counter()
        try:
            return parse(*args, **kwargs)
        finally:
            _state.update(measuring=False, parse_s=time.perf_counter() - start)
            _parse["import_s"] = _state["import_s"]

    def timed_execute(context, ti, log):
        _state.update(measuring=True, import_s=0.0, call_s=0.0)  # a forked parent may have counted some
        start = time.perf_counter()
        try:
            return execute(context=context, ti=ti, log=log)
        finally:
            _state["measuring"] = False
            line = {
                "dag_id": ti.dag_id,
                "run_id": ti.run_id,
                "task_id": ti.task_id,
                "parse_s": round(_state["parse_s"], 4),
                "parse_import_s": round(_parse["import_s"], 4),
                "execute_s": round(time.perf_counter() - start, 4),
                "import_s": round(_state["import_s"], 4),
                "driver_call_s": round(_state["call_s"], 4),
            }
            with open(_OUT, "a") as out:
                out.write(json.dumps(line) + "\n")

    runner.parse, runner._execute_task = timed_parse, timed_execute


def _patch_late() -> None:
    for name, patch in ((_RUNNER, _patch_runner), (_DRIVERS, _patch_drivers)):
        if name not in _patched and name in sys.modules and hasattr(sys.modules[name], "__dict__"):
            module = sys.modules[name]
            if getattr(module, "__spec__", None) and getattr(module.__spec__, "_initializing", False):
                continue  # still executing its body: patch on a later import
            _patched.add(name)
            patch(module)


if _OUT:
    builtins.__import__ = _timed_import(builtins.__import__)
    importlib.import_module = _timed_import(importlib.import_module)
