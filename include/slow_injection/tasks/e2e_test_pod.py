"""The full transition's end-to-end test: the team's own test image run once as a pod in green, through
the cncf-kubernetes provider's KubernetesPodOperator. Its exit code is the gate's verdict (XCom key
`verdict`, like every gate); the last lines of its log, the exit code, the pod and its start/end go to
XCom key `e2e_test` and into the report.

Why the pod operator rather than KubernetesJobOperator: it reattaches to the pod of an earlier try
(`durable`, by identity and labels) and takes a fixed name, so a retried or cleared task never leaves
two test runs; the Job operator creates a fresh, randomly-suffixed Job on every try. Why not
deferrable: a test runs minutes at most (bounded by `timeout`), and the synchronous path reads the
container's exit code and log directly; deferring would add the async client and a triggerer hop.

Two things the operator does not leave to the node: when the test ended (read from the pod's status; the
log is followed into the task log beside, and a stream the node leaves open after the container stopped is
closed — kubernetes#59902, airflow#23497, and kwok always), and how long it may run (`timeout` is the pod's
activeDeadlineSeconds, which the kubelet enforces; past it and a grace the operator judges the test failed
itself, should no kubelet do so).
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection.gates.verdict import Verdict, push
from include.slow_injection.kinds import e2e_test as e2e_kind
from include.slow_injection.spec.models import E2E_TEST_LABEL as LABEL
from include.slow_injection.tasks.operators import is_dry_run
from include.slow_injection.tasks.scope import gate_out_of_scope

XCOM_KEY = "e2e_test"
LOG_DRAIN_SECONDS = 2.0  # after the container ended: how long a followed log may take to end by itself


def overrun_grace(timeout: float) -> float:
    """How long past its deadline a running test is left to the kubelet's own kill (exit 137) before the
    operator judges it; 10 % of the timeout, 2 s to 30 s."""
    return min(30.0, max(2.0, 0.1 * timeout))


def pod_name(test: str, dag_id: str, run_id: str) -> str:
    """One name per test and run (≤ 56 characters): every try of the task finds the same pod."""
    return f"e2e-{test}-{hashlib.sha256(f'{dag_id}/{run_id}'.encode()).hexdigest()[:10]}"


def describe(test: dict[str, Any]) -> str:
    argv = " ".join(list(test.get("command") or []) + list(test.get("args") or [])) or "(the image's entrypoint)"
    return (
        f"{test['image']} {argv} in namespace {test['namespace']} via connection {test['connection']}, "
        f"exit 0 within {test['timeout']:g}s"
    )


class E2eTestPod(KubernetesPodOperator):
    """Runs the test pod, waits for it (logs streamed to the task log), keeps the log tail, deletes the pod,
    and fails (no retry) unless it exits 0. An error before any exit code (API, pod never starting) is
    retried; the next try reattaches to the same pod or replaces it."""

    ui_color = "#d6f0ef"
    template_fields = ()  # the spec's command and env are data, never Jinja

    def __init__(
        self,
        *,
        test: dict[str, Any],
        pod_labels: dict[str, str] | None = None,
        stage: dict[str, Any] | None = None,
        stage_actions: list[str] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        timeout = int(max(1.0, float(test["timeout"])))
        super().__init__(
            namespace=test["namespace"],
            image=test["image"],
            cmds=list(test.get("command") or []) or None,
            arguments=list(test.get("args") or []) or None,
            env_vars=dict(test.get("env") or {}),
            kubernetes_conn_id=test["connection"],
            labels={**dict(test.get("labels") or {}), **(pod_labels or {}), LABEL: test["name"]},
            annotations=dict(test.get("annotations") or {}) or None,
            random_name_suffix=False,
            get_logs=True,
            do_xcom_push=False,
            on_finish_action="delete_pod",
            log_events_on_startup=False,
            log_events_on_failure=False,
            startup_timeout_seconds=timeout,
            schedule_timeout_seconds=timeout,
            startup_check_interval_seconds=1,
            active_deadline_seconds=timeout,
            execution_timeout=timedelta(seconds=timeout + 120),
            **kwargs,
        )
        self.test, self.stage, self.stage_actions = test, stage, stage_actions
        self.plan_task_id = plan_task_id  # plan_wave: the run's scope
        self._exit_code: int | None = None
        self._log_tail: list[str] = []
        self._phase: str | None = None
        self._overran = False

    def execute(self, context: Any) -> dict[str, Any]:
        if (out := gate_out_of_scope(self, context, self.test["name"], e2e_kind.KIND.name)) is not None:
            return out
        self.name = pod_name(self.test["name"], context["dag"].dag_id, context["run_id"])
        record = {
            "test": self.test["name"],
            "pod": self.name,
            "namespace": self.test["namespace"],
            "image": self.test["image"],
            "started_at": time.time(),
        }
        if is_dry_run(context):
            reason = f"[dry-run] would run pod {self.name}: {describe(self.test)}"
            context["ti"].xcom_push(key=XCOM_KEY, value={**record, "dry_run": True, "would_run": reason})
            return self._verdict(context, "pass", reason, record, dry_run=True)
        error: BaseException | None = None
        try:
            super().execute(context)
        except Exception as err:
            error = err
        record.update(
            finished_at=time.time(),
            exit_code=self._exit_code,
            phase=self._phase,
            log_tail=self._log_tail,
            log_tail_lines=self.test["log_tail_lines"],
        )
        context["ti"].xcom_push(key=XCOM_KEY, value=record)
        tail = "\n".join(f"  | {line}" for line in self._log_tail) or "  (no log)"
        if self._overran and self._exit_code is None:
            reason = f"pod {self.name} did not finish within {self.test['timeout']:g}s (the test's timeout)"
            self._verdict(context, "fail", reason, record)
            raise AirflowFailException(
                f"e2e test {self.test['name']} FAILED: {reason} ({self.test['image']}); "
                f"last {len(self._log_tail)} log line(s):\n{tail}"
            )
        if self._exit_code == 0 and error is None:
            return self._verdict(context, "pass", f"pod {self.name} exited 0", record)
        if self._exit_code not in (None, 0):
            reason = f"pod {self.name} exited {self._exit_code}"
            self._verdict(context, "fail", reason, record)
            raise AirflowFailException(
                f"e2e test {self.test['name']} FAILED: {reason} "
                f"({self.test['image']}); last {len(self._log_tail)} log line(s):\n{tail}"
            )
        cause = error
        if error is not None and "returned a failure" in str(error) and error.__context__ is not None:
            cause = error.__context__  # the provider's clean-up raised over the reason (e.g. never scheduled)
        said = f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0][:300]}"
        reason = f"pod {self.name} {'exited 0, then' if self._exit_code == 0 else 'gave no exit code:'} {said}"
        self._verdict(context, "fail", reason, record)
        raise RuntimeError(
            f"e2e test {self.test['name']}: {reason} (will retry; the retry reuses or replaces the same pod)\n{tail}"
        ) from error

    def _verdict(
        self, context: Any, status: str, reason: str, record: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        verdict = Verdict(
            gate=self.test["name"],
            kind=e2e_kind.KIND.name,
            service=None,
            env="green",
            status=status,
            reason=reason,
            measurements=[],
            dry_run=dry_run,
            e2e_test=dict(record),
        )
        self.log.info("e2e test %s %s: %s", self.test["name"], status.upper(), reason)
        return push(context, verdict)  # the caller fails the task, naming the pod's log

    # the provider's method is wrapped by tenacity's @retry, typed (*args, **kwargs) -> Any
    def await_pod_completion(self, pod: Any) -> None:  # type: ignore[override]
        """Wait for the test container to end, by its status; meanwhile its log goes to the task log.

        The provider's own wait is its log stream: it returns when the node ends the stream, which a node
        may not do after the container stopped (the provider then waits out a 5-minute read timeout; a DAG's
        execution_timeout can come first and fail, then retry, a test that passed). Here the stream only
        feeds the task log; it gets LOG_DRAIN_SECONDS to end by itself once the container ended, then it is
        shut. A container still running `overrun_grace` after the test's timeout (its activeDeadlineSeconds,
        which no kubelet enforced) ends the wait: the test failed."""
        from kubernetes.client.exceptions import ApiException

        streams: list[Any] = []
        follower = (
            threading.Thread(
                target=self._follow_log, args=(pod, streams), daemon=True, name=f"e2e-log-{pod.metadata.name}"
            )
            if self.get_logs
            else None
        )
        if follower is not None:
            follower.start()
        deadline = time.monotonic() + float(self.test["timeout"]) + overrun_grace(float(self.test["timeout"]))
        try:
            while True:
                remote = self.pod_manager.read_pod(pod)
                statuses = (remote.status.container_statuses if remote.status else None) or []
                status = next((c for c in statuses if c.name == self.base_container_name), None)
                if status is not None and status.state is not None and status.state.terminated is not None:
                    return
                if time.monotonic() >= deadline:
                    self._overran = True
                    raise TimeoutError(f"pod {pod.metadata.name} still running past the test's timeout")
                time.sleep(self.base_container_status_polling_interval)
        except ApiException as exc:
            self._handle_api_exception(exc, pod)
        finally:
            if follower is not None:
                follower.join(timeout=LOG_DRAIN_SECONDS)
                if follower.is_alive():
                    self.log.info(
                        "the log stream of pod %s was still open %gs after the wait ended: closed (the "
                        "log tail is read separately)",
                        pod.metadata.name,
                        LOG_DRAIN_SECONDS,
                    )
                for _ in range(3):  # the stream may still be opening: shut it once it is there
                    if not follower.is_alive():
                        break
                    for response in streams:
                        try:
                            response.shutdown()
                        except Exception:
                            pass
                    follower.join(timeout=2)

    def _follow_log(self, pod: Any, streams: list[Any]) -> None:
        """The test container's log, line by line into the task log, as it comes (one follow stream)."""
        prefix, pending = f"[{self.base_container_name}]", b""
        try:
            response = self.client.read_namespaced_pod_log(
                pod.metadata.name,
                pod.metadata.namespace,
                container=self.base_container_name,
                follow=True,
                _preload_content=False,
            )
            streams.append(response)
            for chunk in response.stream(amt=None, decode_content=True):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self.log.info("%s %s", prefix, line.decode("utf-8", errors="backslashreplace"))
        except Exception as err:
            self.log.info("log stream of pod %s ended: %s", pod.metadata.name, type(err).__name__)
        if pending:
            self.log.info("%s %s", prefix, pending.decode("utf-8", errors="backslashreplace"))

    def get_or_create_pod(self, pod_request_obj: Any, context: Any) -> Any:
        """Reattach to this run's pod of an earlier try while it runs (the provider's `durable`); a pod
        of that name the provider would not reattach to (already judged, kept) is replaced, not doubled."""
        from kubernetes.client.rest import ApiException

        meta = pod_request_obj.metadata
        try:
            existing = self.client.read_namespaced_pod(meta.name, meta.namespace)
        except ApiException as err:
            if err.status != 404:
                raise
            existing = None
        if existing is not None and self.find_pod(meta.namespace, context=context) is None:
            self.log.info("pod %s is left from an earlier try: replacing it", meta.name)
            self.pod_manager.delete_pod(existing)
            deadline = time.monotonic() + 60
            while self._exists(pod_request_obj) and time.monotonic() < deadline:
                time.sleep(0.5)
        return super().get_or_create_pod(pod_request_obj, context)

    def _exists(self, pod: Any) -> bool:
        from kubernetes.client.rest import ApiException

        try:
            self.client.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def post_complete_action(self, *, pod: Any, remote_pod: Any, context: Any, result: Any, **kwargs: Any) -> None:
        """Before the provider deletes the pod: its exit code and the last lines of its log."""
        self._capture(pod)
        super().post_complete_action(pod=pod, remote_pod=remote_pod, context=context, result=result, **kwargs)

    def _capture(self, pod: Any) -> None:
        if pod is None or getattr(pod, "metadata", None) is None:
            return
        try:
            remote = self.pod_manager.read_pod(pod)
        except Exception as err:
            self.log.warning("could not read pod %s: %s", pod.metadata.name, err)
            return
        self._phase = remote.status.phase if remote.status else None
        status = (
            next((c for c in (remote.status.container_statuses or []) if c.name == self.base_container_name), None)
            if remote.status
            else None
        )
        terminated = status.state.terminated if status and status.state else None
        self._exit_code = terminated.exit_code if terminated else None
        try:
            response = self.client.read_namespaced_pod_log(
                pod.metadata.name,
                pod.metadata.namespace,
                container=self.base_container_name,
                tail_lines=int(self.test["log_tail_lines"]),
                _preload_content=False,
            )
            text = response.data.decode("utf-8", errors="backslashreplace")
            self._log_tail = text.splitlines()[-int(self.test["log_tail_lines"]) :]
        except Exception as err:
            self.log.warning("no log from pod %s: %s", pod.metadata.name, err)
