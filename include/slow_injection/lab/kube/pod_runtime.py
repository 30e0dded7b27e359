"""Pods that run on their own in the stand-in cluster: a pod created through the API (e.g. by the
KubernetesPodOperator), or for a Job created through the API, runs its first container's tiny shell
command, writes its log and exits; the Job completes or fails with it.

Only a minimal, documented subset is interpreted, for stock images (busybox, alpine, debian, ubuntu,
bash): `sh -c "SCRIPT"` (or a bare argv), statements separated by `;` or newlines, each one of
    echo TEXT    one log line ($NAME / ${NAME} from the container's env are expanded)
    sleep S      wait S seconds (e.g. 0.5, 2, 2s)
    exit N       end with exit code N (the script's end without `exit` is exit 0)
Anything else (another command, `&&`, `|`, redirections) ends the pod with exit 127 and says so in
its log. Any other image stays Pending with ErrImagePull (the stand-in cannot run it). A pod's
`activeDeadlineSeconds` kills it (DeadlineExceeded, exit 137), as the kubelet does.

The log lives in `store.pod_logs[uid]`; the API server's `pods/{name}/log` serves it (log_route).
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from typing import Any

from include.slow_injection.kubernetes.timestamps import to_rfc3339

STOCK_IMAGES = ("busybox", "alpine", "debian", "ubuntu", "bash")
SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash")
UNSUPPORTED = 127


def is_stock_image(image: str) -> bool:
    """`busybox:1.36`, `docker.io/library/alpine:3.20` → True; a team's own image → False."""
    name = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return name in STOCK_IMAGES


def program(container: dict[str, Any]) -> list[tuple[float, str, Any]]:
    """The container's command as timed steps: (seconds after start, "line" | "exit", text | code)."""
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    if len(argv) >= 2 and argv[0] in SHELLS and argv[1] == "-c":
        script = argv[2] if len(argv) > 2 else ""
    else:
        script = shlex.join(argv)
    env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "name" in e}
    steps: list[tuple[float, str, Any]] = []
    at = 0.0
    for words in _statements(script):
        verb = words[0]
        if any(set(w) <= set("&|<>") for w in words):
            verb = "unsupported"
        if verb == "echo":
            steps.append((at, "line", _expand(" ".join(words[1:]), env)))
        elif verb == "sleep" and len(words) == 2 and re.fullmatch(r"\d+(\.\d+)?s?", words[1]):
            at += float(words[1].rstrip("s"))
        elif verb == "exit" and len(words) <= 2 and (len(words) == 1 or words[1].isdigit()):
            steps.append((at, "exit", int(words[1]) % 256 if len(words) == 2 else 0))
            return steps
        else:
            steps.append((at, "line", f"stand-in sh: {' '.join(words)}: not simulated "
                                      "(only echo, sleep and exit, separated by ';' or newlines)"))
            steps.append((at, "exit", UNSUPPORTED))
            return steps
    steps.append((at, "exit", 0))
    return steps


def _statements(script: str) -> list[list[str]]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in (";", "\n") or set(token) == {"\n"}:
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), text)


def run_pods(store: Any, now: dt.datetime) -> None:
    """One controller pass: start new API-created pods, advance running ones (call under store.lock)."""
    for pod in store.list("pods", None):
        meta = pod["metadata"]
        if "stand-in/deployment" in (meta.get("labels") or {}):
            continue  # a Deployment's pods (controllers.py) only stand there
        entry = store.pod_logs.get(meta["uid"])
        if entry is None:
            if (pod.get("status") or {}).get("phase") not in (None, "Pending"):
                continue  # made with a status (e.g. a CronJob's Job pod in controllers.py)
            entry = _start(store, pod, now)
        if not entry["finished"]:
            _advance(store, pod, entry, now)


def run_jobs(store: Any, now: dt.datetime) -> None:
    """A Job created through the API (no CronJob owns it) gets one pod from its template, and ends as
    that pod ends: Complete (succeeded 1) or Failed (failed 1, BackoffLimitExceeded; no pod retries)."""
    for job in store.list("jobs", None):
        meta, status = job["metadata"], job.get("status") or {}
        if meta.get("ownerReferences") or status.get("conditions"):
            continue  # a CronJob's Job (controllers.py runs it), or ended
        pods = store.list("pods", meta["namespace"], f"controller-uid={meta['uid']}")
        if not pods and not status.get("startTime"):
            _job_pod(store, job)
            job["status"] = {"startTime": to_rfc3339(now), "ready": 0}
            store.put("jobs", job)
            continue
        phase = pods[0]["status"].get("phase") if pods else "Failed"  # a deleted pod fails the Job
        if phase in ("Succeeded", "Failed"):
            ok = phase == "Succeeded"
            job["status"] = {"startTime": status.get("startTime"), "completionTime": to_rfc3339(now),
                             "succeeded" if ok else "failed": 1, "ready": 0,
                             "conditions": [{"type": "Complete" if ok else "Failed", "status": "True",
                                             "reason": "Completed" if ok else "BackoffLimitExceeded",
                                             "lastTransitionTime": to_rfc3339(now)}]}
            store.put("jobs", job)


def _job_pod(store: Any, job: dict[str, Any]) -> None:
    meta, template = job["metadata"], job["spec"]["template"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "job-name": meta["name"],
              "batch.kubernetes.io/job-name": meta["name"], "controller-uid": meta["uid"],
              "batch.kubernetes.io/controller-uid": meta["uid"]}
    store.put("pods", {"metadata": {"name": f"{meta['name']}-{meta['uid'][:5]}", "namespace": meta["namespace"],
                                    "labels": labels,
                                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                         "uid": meta["uid"], "controller": True}]},
                       "spec": template.get("spec") or {}, "status": {"phase": "Pending"}}, creating=True)


def _start(store: Any, pod: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    container = pod["spec"]["containers"][0]
    entry: dict[str, Any] = {"container": container["name"], "lines": [], "started": now, "finished": False,
                             "steps": [], "done": 0}
    store.pod_logs[pod["metadata"]["uid"]] = entry
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": to_rfc3339(now)}
    state = {"name": container["name"], "image": container.get("image", ""), "imageID": "", "restartCount": 0}
    if not is_stock_image(container.get("image", "")):
        entry["finished"] = True
        message = (f"stand-in: image {container.get('image')!r} is not a stock shell image "
                   f"({', '.join(STOCK_IMAGES)}): it cannot run here")
        state.update(ready=False, started=False, state={"waiting": {"reason": "ErrImagePull", "message": message}})
        pod["status"] = {"phase": "Pending", "conditions": [scheduled], "containerStatuses": [state]}
    else:
        entry["steps"] = program(container)
        state.update(ready=True, started=True, state={"running": {"startedAt": to_rfc3339(now)}})
        pod["status"] = {"phase": "Running", "startTime": to_rfc3339(now), "podIP": "10.0.0.1",
                         "conditions": [scheduled, {"type": "Ready", "status": "True"}],
                         "containerStatuses": [state]}
    store.put("pods", pod)
    return entry


def _advance(store: Any, pod: dict[str, Any], entry: dict[str, Any], now: dt.datetime) -> None:
    elapsed = (now - entry["started"]).total_seconds()
    exit_code, reason = None, None
    while entry["done"] < len(entry["steps"]) and entry["steps"][entry["done"]][0] <= elapsed:
        at, kind, value = entry["steps"][entry["done"]]
        entry["done"] += 1
        if kind == "line":
            entry["lines"].append((entry["started"] + dt.timedelta(seconds=at), value))
        else:
            exit_code = value
            break
    deadline = pod["spec"].get("activeDeadlineSeconds")
    if exit_code is None and deadline is not None and elapsed >= float(deadline):
        exit_code, reason = 137, "DeadlineExceeded"
    if exit_code is None:
        return
    entry["finished"] = True
    state = pod["status"]["containerStatuses"][0]
    state.update(ready=False, started=False, state={"terminated": {
        "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": to_rfc3339(entry["started"]), "finishedAt": to_rfc3339(now)}})
    pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    pod["status"]["conditions"] = [c for c in pod["status"]["conditions"] if c["type"] != "Ready"]
    if reason:
        pod["status"].update(reason=reason, message=f"Pod was active on the node longer than {deadline}s")
    store.put("pods", pod)


LogLines = tuple[list[tuple[dt.datetime, str]], bool]


def log_lines(store: Any, pod: dict[str, Any], container: str | None) -> LogLines | None:
    """(lines so far, finished) of a pod's container, or None when it has not started."""
    entry = store.pod_logs.get(pod["metadata"]["uid"])
    if entry is None or (container and container != entry["container"]) or not entry["steps"]:
        return None
    return list(entry["lines"]), entry["finished"]


def format_line(moment: dt.datetime, text: str, timestamps: bool) -> bytes:
    stamp = moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + " " if timestamps else ""
    return f"{stamp}{text}\n".encode()
