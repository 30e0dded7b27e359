#!/usr/bin/env bash
# `make test`: three pytest processes side by side on the 2 cores, each with its own control plane:
# - the e2e tests (one lab + real Airflow, mostly waiting on bakes), output shown when all end;
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
if [ "$#" -gt 0 ]; then
    exec "$PY" -m pytest "${COMMON[@]}" "$@"
fi
TICKS=(tests/test_kubernetes_wave_runs.py tests/test_cronjob_handover.py tests/test_cronjob_handover_drill.py
       tests/test_rbac.py)
e2e_log=$(mktemp -t slow-injection-e2e-log.XXXXXX)
ticks_log=$(mktemp -t slow-injection-ticks-log.XXXXXX)
"$PY" -m pytest -m e2e "${COMMON[@]}" >"$e2e_log" 2>&1 &
e2e_pid=$!
nice -n 5 "$PY" -m pytest -m "not e2e" "${COMMON[@]}" "${TICKS[@]}" >"$ticks_log" 2>&1 &
ticks_pid=$!
trap 'kill "$e2e_pid" "$ticks_pid" 2>/dev/null' INT TERM
# The e2e half is the longest (its bakes run on the wall clock, its Airflow needs the CPU on time):
# the others yield the cores to it.
nice -n 10 "$PY" -m pytest -m "not e2e" "${COMMON[@]}" "${TICKS[@]/#/--ignore=}"
unit=$?
wait "$ticks_pid"
ticks=$?
wait "$e2e_pid"
e2e=$?
echo
echo "=============== Kubernetes tests that wait for minute ticks ==============="
cat "$ticks_log"
echo
echo "=============================== e2e tests (tests/e2e) ==============================="
cat "$e2e_log"
rm -f "$e2e_log" "$ticks_log"
echo "unit tests: exit $unit; minute-tick tests: exit $ticks; e2e tests: exit $e2e"
[ "$unit" -eq 0 ] && [ "$ticks" -eq 0 ] && [ "$e2e" -eq 0 ]
