"""Leases are atomic where the workload lives (issue 18, item 4): on the real kube-apiserver, a
coordination.k8s.io/v1 Lease per workload in blue's namespace. Five waves sharing one service race to
lease it at the same instant, twenty rounds: exactly one goes on each time, the others are refused naming
it. An ended holder's lease is taken over only by a run of that same wave, and of five such takeovers at
once exactly one wins (a resourceVersion-conditional replace). Release is idempotent and never touches
another run's lease. The holder is what `kubectl get lease` shows. The simulated platform's lease (the
world under its file lock) passes the same race. The Role `slow-injection iam` prints allows exactly the
lease calls, and the preflight says when a connection may not make them."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.drivers.simulated import SimulatedPlatform, SimulatedWorld
from include.slow_injection.kubernetes.leases import RUN_ID, WAVE, lease_name
from include.slow_injection.kubernetes.rbac import allows, manifests
from include.slow_injection.ports import Held, HeldBy, LeaseHolder
from include.slow_injection.tasks.leases import acquire_leases, release_leases

WAVES = ("alpha", "beta", "gamma", "delta", "epsilon")
ROUNDS = 20
SAME_CRON_RUN = "scheduled__2026-12-05T02:00:00+00:00"  # every wave on one cron has this run id


def always_live(dag_id: str, run_id: str) -> bool:
    return True


def platform_of(kube: Any) -> KubernetesPlatform:
    access = KubeAccess(kube.plane.api_client())  # a client (and connection pool) of its own, like a worker
    return KubernetesPlatform(access, access, KubernetesPlatform.Settings())


def holder(wave: str, run_id: str = SAME_CRON_RUN) -> LeaseHolder:
    return LeaseHolder(wave=wave, run_id=run_id, acquired_at=time.time(), dag_id=f"wave_{wave}")


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released by one barrier (the same instant, as far as a machine can)."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = calls[i]()
        except Exception as err:  # kept, so the assertion shows it
            answers[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def read_lease(kube: Any, workload: dict[str, Any]) -> dict[str, Any] | None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        answer = client.CoordinationV1Api(kube.api_client).read_namespaced_lease(
            lease_name(workload), workload["namespace"], _preload_content=False
        )
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return json.loads(answer.data)


def test_five_waves_racing_for_one_service_twenty_times_exactly_one_acts_each_time(kube: Any) -> None:
    namespace = kube.namespace("shop")
    web = {"kind": "Deployment", "namespace": namespace, "name": "web"}
    platforms = [platform_of(kube) for _ in WAVES]
    winners = []
    for round_ in range(ROUNDS):
        holders = [holder(w) for w in WAVES]
        answers = race(
            [
                (lambda p=p, h=h: acquire_leases(p, h, {"web": web}, is_live=always_live))
                for p, h in zip(platforms, holders, strict=True)
            ]
        )
        assert not [a for a in answers if isinstance(a, Exception)], answers
        went_on = [w for w, problems in zip(WAVES, answers, strict=True) if problems == []]
        assert len(went_on) == 1, f"round {round_}: {answers}"
        (winner,) = went_on
        winners.append(winner)
        for problems in answers:
            if problems:
                (problem,) = problems
                assert f"is being migrated by wave {winner} (run {SAME_CRON_RUN})" in problem, problem
        lease = read_lease(kube, web)
        assert lease is not None and lease["spec"]["holderIdentity"] == f"{winner}/{SAME_CRON_RUN}"
        assert lease["metadata"]["annotations"][WAVE] == winner
        # the run ends: its release step gives the lease back, the next round starts from free
        assert release_leases(platforms[0], holders[WAVES.index(winner)], {"web": web}) == ["web"]
        assert read_lease(kube, web) is None
    print(f"{ROUNDS} rounds of {len(WAVES)} waves: winners {winners}")


def test_a_second_create_gets_409_and_the_holder_is_what_kubectl_shows(kube: Any) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    namespace = kube.namespace("shop")
    job = {"kind": "CronJob", "namespace": namespace, "name": "report"}
    platform = platform_of(kube)
    first = platform.acquire_lease(job, dataclass_service(holder("alpha", "manual__one"), "report"))
    assert isinstance(first, Held) and first.where == f"Lease {namespace}/slow-injection.cronjob.report"
    lease = read_lease(kube, job)
    assert lease is not None
    again = {**lease, "metadata": {"name": lease["metadata"]["name"], "namespace": namespace}}
    with pytest.raises(ApiException) as taken:
        client.CoordinationV1Api(kube.api_client).create_namespaced_lease(namespace, again)
    assert taken.value.status == 409

    other = platform.acquire_lease(job, holder("beta", "manual__two"))
    assert isinstance(other, HeldBy) and other.holder.wave == "alpha" and other.holder.run_id == "manual__one"
    assert other.holder.service == "report" and other.holder.dag_id == "wave_alpha"
    mine = platform.acquire_lease(job, holder("alpha", "manual__one"))  # the same run, a cleared task again
    assert isinstance(mine, Held) and mine.holder.acquired_at == first.holder.acquired_at

    kubectl = Path(json.loads(kube.plane.state_file.read_text())["bin_dir"]) / "kubectl"
    if not kubectl.exists():
        pytest.skip(f"no kubectl beside the control plane's binaries ({kubectl})")
    shown = subprocess.run(
        [str(kubectl), f"--kubeconfig={kube.kubeconfig_file()}", "-n", namespace, "get", "leases"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    header, row = shown.splitlines()
    assert header.split()[:2] == ["NAME", "HOLDER"], shown
    assert row.split()[:2] == ["slow-injection.cronjob.report", "alpha/manual__one"], shown
    notes = json.loads(
        subprocess.run(
            [str(kubectl), f"--kubeconfig={kube.kubeconfig_file()}", "-n", namespace, "get", "lease", row.split()[0]]
            + ["-o", "jsonpath={.metadata.annotations}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    )
    assert notes[RUN_ID] == "manual__one" and notes[WAVE] == "alpha"
    assert notes["slow-injection.io/workload"] == f"CronJob {namespace}/report"


def dataclass_service(h: LeaseHolder, service: str) -> LeaseHolder:
    import dataclasses

    return dataclasses.replace(h, service=service)


def test_an_ended_holders_lease_is_taken_over_only_by_its_own_wave_and_by_one_run_of_it(kube: Any) -> None:
    namespace = kube.namespace("shop")
    web = {"kind": "Deployment", "namespace": namespace, "name": "web"}
    platform = platform_of(kube)
    assert isinstance(platform.acquire_lease(web, holder("alpha", "manual__gone")), Held)

    def live(dag_id: str, run_id: str) -> bool:
        return run_id != "manual__gone"  # that run failed without releasing; every other run lives

    # another wave: refused, told the holder ended and which Lease to delete once the service is checked
    (problem,) = acquire_leases(platform, holder("beta", "manual__b"), {"web": web}, is_live=live)
    assert "leased by wave alpha (run manual__gone), which is no longer running" in problem
    assert f"then delete Lease {namespace}/slow-injection.deployment.web" in problem
    assert read_lease(kube, web)["spec"]["holderIdentity"] == "alpha/manual__gone"

    # five runs of the same wave at once (a cleared run and new ones): one takeover wins
    runs = [f"manual__retry{i}" for i in range(5)]
    platforms = [platform_of(kube) for _ in runs]
    answers = race(
        [
            (lambda p=p, r=r: acquire_leases(p, holder("alpha", r), {"web": web}, is_live=live))
            for p, r in zip(platforms, runs, strict=True)
        ]
    )
    assert not [a for a in answers if isinstance(a, Exception)], answers
    won = [r for r, problems in zip(runs, answers, strict=True) if problems == []]
    assert len(won) == 1, answers
    lease = read_lease(kube, web)
    assert lease["spec"]["holderIdentity"] == f"alpha/{won[0]}"
    assert lease["spec"]["leaseTransitions"] == 1
    for problems in answers:
        if problems:
            assert f"is being migrated by wave alpha (run {won[0]})" in problems[0], problems

    # a takeover shown a holder that has changed since loses, naming who holds it now
    stale = HeldBy(holder("alpha", "manual__gone"), "", "1")
    answer = platform.take_over_lease(web, holder("alpha", "manual__late"), stale)
    assert isinstance(answer, HeldBy) and answer.holder.run_id == won[0]


def test_release_is_idempotent_and_never_touches_another_runs_lease(kube: Any) -> None:
    namespace = kube.namespace("shop")
    web = {"kind": "Deployment", "namespace": namespace, "name": "web"}
    platform = platform_of(kube)
    mine = holder("alpha")
    assert isinstance(platform.acquire_lease(web, mine), Held)
    assert not platform.release_lease(web, holder("beta"))  # same run id, another wave: not its lease
    assert not platform.release_lease(web, holder("alpha", "manual__other"))
    assert platform.lease_holder(web).holder.wave == "alpha"
    assert platform.release_lease(web, mine)
    assert not platform.release_lease(web, mine)  # again: nothing left, no error
    assert platform.lease_holder(web) is None and read_lease(kube, web) is None
    assert release_leases(platform, mine, {"web": web}) == []


def test_one_refused_workload_gives_back_the_others_all_or_nothing(kube: Any) -> None:
    namespace = kube.namespace("shop")
    web = {"kind": "Deployment", "namespace": namespace, "name": "web"}
    job = {"kind": "CronJob", "namespace": namespace, "name": "report"}
    platform = platform_of(kube)
    assert isinstance(platform.acquire_lease(web, holder("beta")), Held)
    problems = acquire_leases(platform, holder("alpha"), {"report": job, "web": web}, is_live=always_live)
    assert len(problems) == 1 and "web (Deployment" in problems[0]
    assert read_lease(kube, job) is None  # taken first (CronJob sorts before Deployment), then given back


def test_the_simulated_platforms_lease_passes_the_same_race(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOW_INJECTION_SIM_DIR", str(tmp_path))
    SimulatedWorld("race").reset({})
    web = {"kind": "Deployment", "namespace": "shop", "name": "web"}
    platforms = [SimulatedPlatform(SimulatedWorld("race")) for _ in WAVES]
    for round_ in range(ROUNDS):
        holders = [holder(w) for w in WAVES]
        answers = race(
            [
                (lambda p=p, h=h: acquire_leases(p, h, {"web": web}, is_live=always_live))
                for p, h in zip(platforms, holders, strict=True)
            ]
        )
        went_on = [i for i, problems in enumerate(answers) if problems == []]
        assert len(went_on) == 1, f"round {round_}: {answers}"
        assert release_leases(platforms[0], holders[went_on[0]], {"web": web}) == ["web"]
    assert SimulatedWorld("race").read().get("leases") == {}


def test_the_printed_role_allows_the_lease_calls_and_the_preflight_says_when_they_are_not(kube: Any) -> None:
    from kubernetes import client

    blue = kube.namespace("shop")
    docs = manifests([blue])
    for verb in ("get", "create", "update", "delete"):
        assert allows(docs, "coordination.k8s.io", "leases", verb, blue)
    assert allows(docs, "authorization.k8s.io", "selfsubjectaccessreviews", "create", None)

    core = client.CoreV1Api(kube.api_client)
    core.create_namespaced_service_account(blue, {"metadata": {"name": "unbound"}})
    token = core.create_namespaced_service_account_token("unbound", blue, {"spec": {"expirationSeconds": 600}})
    unbound = KubeAccess(kube.plane.api_client("unbound", token.status.token))
    from include.slow_injection.kubernetes.leases import KubeLeases

    assert KubeLeases(unbound.api_client).refused_verbs(blue) == ["get", "create", "update", "delete"]
    assert KubeLeases(kube.api_client).refused_verbs(blue) == []


def test_the_preflight_names_the_missing_lease_permission_and_nothing_else(kube: Any) -> None:
    """A connection bound to the printed Roles minus the lease rule: the preflight's only new finding says
    which lease verbs are missing (each run would be refused at plan_wave otherwise, with a 403)."""
    from kubernetes import client

    from tests.support.kube_support import RARELY, Shop

    shop = Shop.seed(kube, schedule=RARELY, wait_ready=False)
    rbac, core = client.RbacAuthorizationV1Api(kube.api_client), client.CoreV1Api(kube.api_client)
    core.create_namespaced_service_account(shop.blue, {"metadata": {"name": "no-leases"}})
    subject = [{"kind": "ServiceAccount", "name": "no-leases", "namespace": shop.blue}]
    for doc in manifests([shop.blue, shop.green]):
        name = doc["metadata"]["name"]
        if doc["kind"] == "Role":
            doc["rules"] = [r for r in doc["rules"] if r["resources"] != ["leases"]]
            rbac.create_namespaced_role(doc["metadata"]["namespace"], doc)
            binding = {"kind": "Role", "name": name, "apiGroup": "rbac.authorization.k8s.io"}
            rbac.create_namespaced_role_binding(
                doc["metadata"]["namespace"], {"metadata": {"name": name}, "subjects": subject, "roleRef": binding}
            )
        else:
            name = f"{name}-{shop.blue}"  # the session's cluster may hold the shared one from another test
            rbac.create_cluster_role({**doc, "metadata": {"name": name}})
            binding = {"kind": "ClusterRole", "name": name, "apiGroup": "rbac.authorization.k8s.io"}
            rbac.create_cluster_role_binding({"metadata": {"name": name}, "subjects": subject, "roleRef": binding})
    token = core.create_namespaced_service_account_token("no-leases", shop.blue, {"spec": {"expirationSeconds": 600}})
    bound = KubeAccess(kube.plane.api_client("no-leases", token.status.token))
    admin = KubeAccess(kube.api_client)
    settings = KubernetesPlatform.Settings()

    def findings(access: KubeAccess) -> list[str]:
        return wait_for_role(lambda: KubernetesPlatform(access, access, settings).preflight(shop.web))

    without, admitted = findings(bound), findings(admin)
    extra = [f for f in without if f not in admitted]
    assert extra == [
        f"Deployment {shop.blue}/web: the connection may not get, create, update, delete leases "
        f"(coordination.k8s.io) in {shop.blue}, so runs cannot lease the workload (`slow-injection iam` "
        f"prints the Role that grants it) [rbac]"
    ], without


def wait_for_role(call: Callable[[], list[str]], timeout: float = 10.0) -> list[str]:
    """RBAC bindings reach the authorizer's cache within moments: retry while reads are still refused."""
    from kubernetes.client.rest import ApiException

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiException as err:
            if err.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)
