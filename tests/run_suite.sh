#!/usr/bin/env bash
# `make test`: the e2e tests (one lab + real Airflow, mostly waiting on bakes) and the unit tests run as two
# pytest processes side by side on the 2 cores; the unit output streams, the e2e output follows when both end.
# With arguments, one pytest process runs just them: tests/run_suite.sh tests/test_x.py -k gate
set -uo pipefail
PY=${PY:-.venv/bin/python}
COMMON=(--durations=15)
# The Kubernetes control plane the tests start: built from upstream Go modules once, cached outside the
# checkout (deploy/kube/build.sh prints its progress; ~8 min and ~5 GB the first time on 2 cores).
bash deploy/kube/build.sh >/dev/null || { echo "building the Kubernetes control plane failed" >&2; exit 1; }
if [ "$#" -gt 0 ]; then
    exec "$PY" -m pytest "${COMMON[@]}" "$@"
fi
log=$(mktemp -t slow-injection-e2e-log.XXXXXX)
"$PY" -m pytest -m e2e "${COMMON[@]}" >"$log" 2>&1 &
e2e_pid=$!
trap 'kill "$e2e_pid" 2>/dev/null' INT TERM
# The e2e half is the longer one (its bakes run on the wall clock, its Airflow needs the CPU on time):
# the unit half yields the cores to it.
nice -n 10 "$PY" -m pytest -m "not e2e" "${COMMON[@]}"
unit=$?
wait "$e2e_pid"
e2e=$?
echo
echo "=============================== e2e tests (tests/e2e) ==============================="
cat "$log"
rm -f "$log"
echo "unit tests: exit $unit; e2e tests: exit $e2e"
[ "$unit" -eq 0 ] && [ "$e2e" -eq 0 ]
