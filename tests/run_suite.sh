#!/usr/bin/env bash
# `make test`: four pytest processes side by side on the 2 cores, each with its own control plane:
# - the e2e tests in two processes (each its own lab + real Airflow, mostly waiting on bakes and ticks);
# - the Kubernetes tests that wait for real CronJob minute ticks (mostly idle, waiting on the clock);
# - every other test (its output streams).
# With arguments, one pytest process runs just them: tests/run_suite.sh tests/test_x.py -k gate
set -uo pipefail
PY=${PY:-.venv/bin/python}
COMMON=(--durations=15)
# The Kubernetes control plane the tests start: built from upstream Go modules once, cached outside the
# checkout (deploy/kube/build.sh prints its progress; ~8 min and ~5 GB the first time on 2 cores).
bash deploy/kube/build.sh >/dev/null || { echo "building the Kubernetes control plane failed" >&2; exit 1; }
# The documentation site (mkdocs.yml, docs/), built --strict: a broken link, anchor or page fails the run.
# (Not with -q: it drops the warnings before --strict counts them.)
docs=$(mktemp -d -t slow-injection-docs.XXXXXX)
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict -d "$docs/site" >"$docs/log" 2>&1 \
    || { cat "$docs/log" >&2; rm -rf "$docs"; echo "the documentation build failed (mkdocs build --strict)" >&2; exit 1; }
rm -rf "$docs"
# The import contracts (pyproject.toml [tool.importlinter]): imports point one way, no cycles.
contracts=$(PYTHONPATH=".:plugins${PYTHONPATH:+:$PYTHONPATH}" "$(dirname "$PY")/lint-imports" --no-cache 2>&1) \
    || { echo "$contracts" >&2; echo "the import contracts are broken (lint-imports)" >&2; exit 1; }
# Lint (with Airflow's AIR rules) and format ([tool.ruff] in pyproject.toml): `ruff check --fix . && ruff format .`
"$(dirname "$PY")/ruff" check --quiet . || { echo "ruff check found the problems above" >&2; exit 1; }
"$(dirname "$PY")/ruff" format --check --quiet . || { echo "ruff format would change the files above" >&2; exit 1; }
# Types over include/ and plugins/ ([tool.mypy] in pyproject.toml, with pydantic's plugin for the models).
types=$(PYTHONPATH=".:plugins${PYTHONPATH:+:$PYTHONPATH}" "$(dirname "$PY")/mypy" 2>&1) \
    || { echo "$types" >&2; echo "mypy found the type errors above" >&2; exit 1; }
# The project's own bytecode, once (PYTHONDONTWRITEBYTECODE may be set): every Airflow task process imports it.
"$PY" -m compileall -q -j 2 include plugins dags tests bench >/dev/null
if [ "$#" -gt 0 ]; then
    exec "$PY" -m pytest "${COMMON[@]}" "$@"
fi
TICKS=(tests/test_kubernetes_wave_runs.py tests/test_cronjob_handover.py tests/test_cronjob_handover_drill.py
       tests/test_rbac.py)
# The e2e tests in two halves, each with its own lab and Airflow: the whole lab waves (each waits on minute
# ticks and bakes) with the UI tests (whose report page shows such a wave's real run), and the operating
# verbs and drills. Idle on the wall clock most of the time, so the halves overlap well.
LAB_WAVES=(tests/e2e/test_lab_waves.py tests/e2e/test_ui.py)
# The e2e on CeleryExecutor (its own lab, Redis and two Celery workers): after the minute-tick tests, in their
# process, so its Airflow never competes with a third one on the 2 cores.
CELERY=(tests/e2e/test_celery_scale_out.py)
logs=$(mktemp -d -t slow-injection-logs.XXXXXX)
names=() pids=()
background() {  # background NAME NICENESS PYTEST-ARGS...: output to $logs/NAME, shown once all end
    local name=$1 niceness=$2
    shift 2
    nice -n "$niceness" "$PY" -m pytest "${COMMON[@]}" "$@" >"$logs/$name" 2>&1 &
    names+=("$name") pids+=($!)
}
background e2e-lab-waves 0 -m e2e "${LAB_WAVES[@]}"
background e2e-operating 0 -m e2e tests/e2e "${LAB_WAVES[@]/#/--ignore=}" "${CELERY[@]/#/--ignore=}"
{
    child=
    trap 'kill $child 2>/dev/null; exit 143' INT TERM  # the trap below stops this subshell: its pytest too
    nice -n 5 "$PY" -m pytest "${COMMON[@]}" -m "not e2e" "${TICKS[@]}" &
    child=$!
    wait $child
    ticks=$?
    "$PY" -m pytest "${COMMON[@]}" -m e2e "${CELERY[@]}" &
    child=$!
    wait $child
    celery=$?
    exit $((ticks != 0 ? ticks : celery))
} >"$logs/minute-ticks+celery" 2>&1 &
names+=("minute-ticks+celery") pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
# The e2e halves are the longest (their bakes run on the wall clock, their Airflow needs the CPU on time):
# the others yield the cores to them.
nice -n 10 "$PY" -m pytest -m "not e2e" "${COMMON[@]}" "${TICKS[@]/#/--ignore=}"
code=$?
summary="unit: exit $code"
failed=$((code != 0))
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    code=$?
    printf '\n=============================== %s ===============================\n' "${names[$i]}"
    cat "$logs/${names[$i]}"
    summary+="; ${names[$i]}: exit $code"
    [ "$code" -eq 0 ] || failed=1
done
rm -rf "$logs"
echo "$summary"
[ "$failed" -eq 0 ]
