"""`slow-injection discover` against the Kubernetes API test server (official client over HTTP, through
the cncf-kubernetes KubernetesHook and a kubeconfig): a mixed namespace becomes draft waves that
classify, guess dependencies, carry the Fargate preflight as comments, validate, and survive a re-run
without losing a human's edits."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from include.slow_injection import cli
from include.slow_injection.discover.classify import classify
from include.slow_injection.discover.dependencies import apply_rules, hosts_in, infer
from include.slow_injection.discover.files import DIGEST_PREFIX, state
from include.slow_injection.discover.inventory import Inventory, Source
from include.slow_injection.discover.run import draft
from include.slow_injection.lab.kube.api_server import KubernetesTestServer
from include.slow_injection.spec import load_waves

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"cpu": "500m", "memory": "512Mi"}


def pod(name: str, env: list | None = None, **extra) -> dict:  # noqa: ANN003
    container = {"name": "app", "image": f"{name}:1", "resources": {"requests": FIXED, "limits": FIXED}}
    if env:
        container["env"] = env
    container.update(extra.pop("container", {}))
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container], **extra}}


def deployment(name: str, ns: str = "shop", **pod_extra) -> dict:  # noqa: ANN003
    return {"metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": pod(name, **pod_extra)}}


def cronjob(name: str, env: list | None = None, ttl: int | None = 300) -> dict:
    template = pod(name, env)
    template["spec"]["restartPolicy"] = "Never"
    job = {"template": template, **({"ttlSecondsAfterFinished": ttl} if ttl is not None else {})}
    return {"metadata": {"name": name, "namespace": "shop"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}}}


def service(name: str, kind: str = "ClusterIP", ns: str = "shop") -> dict:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 8080, "targetPort": 8080}]}}


def seed(store) -> None:  # noqa: ANN001
    """A shop namespace as a company would have it, and a system namespace discover must skip."""
    for ns in ("shop", "kube-system"):
        store.put("namespaces", {"metadata": {"name": ns}}, creating=True)
    put = store.put
    put("cronjobs", cronjob("nightly-report", env=[
        {"name": "ORDERS_API", "value": "http://orders.shop.svc.cluster.local:8080/api/v1"}]))
    put("cronjobs", cronjob("cleanup", ttl=None))  # no ttlSecondsAfterFinished: a preflight finding
    put("deployments", deployment("web", env=[
        {"name": "ORDERS_URL", "value": "http://orders.shop.svc.cluster.local:8080"},
        {"name": "CATALOG_URL", "value": "http://catalog:8080/items"}],
        container={"readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}))
    put("services", service("web", "LoadBalancer"))
    put("deployments", deployment("catalog", container={"envFrom": [{"configMapRef": {"name": "catalog-config"}}]}))
    put("configmaps", {"metadata": {"name": "catalog-config", "namespace": "shop"},
                       "data": {"ORDERS_HOST": "orders.shop:8080", "LOG_LEVEL": "info"}})
    put("services", service("catalog"))
    put("ingresses", {"metadata": {"name": "shop", "namespace": "shop"}, "spec": {"rules": [{"http": {"paths": [
        {"path": "/catalog", "pathType": "Prefix",
         "backend": {"service": {"name": "catalog", "port": {"number": 8080}}}}]}}]}})
    put("deployments", deployment("orders"))
    put("services", service("orders"))
    put("poddisruptionbudgets", {"metadata": {"name": "orders", "namespace": "shop"},
                                 "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "orders"}}}})
    put("daemonsets", {"metadata": {"name": "log-agent", "namespace": "shop"},
                       "spec": {"selector": {"matchLabels": {"app": "log-agent"}}, "template": pod("log-agent")}})
    put("deployments", deployment("legacy-files", volumes=[{"name": "data", "hostPath": {"path": "/srv/data"}}]))
    put("deployments", deployment("coredns", ns="kube-system"))


@pytest.fixture
def cluster(tmp_path):  # noqa: ANN001, ANN201
    with KubernetesTestServer() as server:
        seed(server.store)
        kubeconfig = tmp_path / "kubeconfig.yaml"
        kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(context="blue")))
        yield server, kubeconfig


def run_discover(kubeconfig: Path, out: Path, *extra: str) -> int:
    return cli.main(["discover", "--kubeconfig", str(kubeconfig), "--context", "blue", "--out", str(out),
                     "--owner", "shop-team", *extra])


def body(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def services_of(path: Path) -> dict[str, dict]:
    return {s["name"]: s for s in yaml.safe_load(body(path))["services"]}


def test_a_mixed_namespace_becomes_reviewable_draft_waves_that_validate(cluster, tmp_path, capsys) -> None:  # noqa: ANN001
    server, kubeconfig = cluster
    out = tmp_path / "waves"
    assert run_discover(kubeconfig, out) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["draft-01-shop.yaml", "draft-02-shop.yaml", "draft-03-shop.yaml"]

    # wave 1: the scheduled jobs only; the job's guess on orders is dropped by the spec rule, with the reason
    jobs = services_of(out / "draft-01-shop.yaml")
    assert {n: s["exposure"] for n, s in jobs.items()} == {"cleanup": "scheduled", "nightly-report": "scheduled"}
    assert all("depends_on" not in s for s in jobs.values())
    first = body(out / "draft-01-shop.yaml")
    assert "# dropped guess: depends on orders (env ORDERS_API of container app = " \
           "http://orders.shop.svc.cluster.local:8080/api/v1): scheduled jobs migrate before exposed" in first
    assert "#   - CronJob shop/cleanup: Jobs need ttlSecondsAfterFinished" in first
    assert "not migrated: DaemonSet shop/log-agent — DaemonSets do not run on Fargate" in first
    assert "coredns" not in first and "kube-system" not in printed
    assert f"from kubeconfig {kubeconfig}, context blue, server {server.url}" in first
    assert first.index("a human must review it") < first.index("\nid: draft-01-shop")
    assert "the connection\n# todo-review-kube does not exist" in first  # what stops an unreviewed run
    schema_ref = first.split("# yaml-language-server: $schema=")[1].split("\n")[0]
    assert (out / schema_ref).resolve() == ROOT / "include" / "schema" / "wave.schema.json"

    # wave 2: internal services (drafted as exposed, with the explanation); hostPath found by the preflight
    internal = services_of(out / "draft-02-shop.yaml")
    assert sorted(internal) == ["legacy-files", "orders"]
    assert all(s["exposure"] == "exposed" and s["router"]["connection"] == "todo-review-router"
               for s in internal.values())
    second = body(out / "draft-02-shop.yaml")
    assert "# internal service: the spec has no exposure for in-cluster-only services" in second
    assert "#   - Deployment shop/legacy-files: hostPath volume data is not supported on Fargate [host-path]" in second
    assert "Deployment shop/orders: no PodDisruptionBudget" not in second  # orders has one
    assert internal["orders"]["workload"] == {"kind": "Deployment", "namespace": "shop", "name": "orders",
                                              "green_namespace": "shop-fargate", "copy_services": ["orders"]}

    # wave 3: the user-facing services; web depends on catalog (same wave) and on orders (earlier wave)
    exposed = services_of(out / "draft-03-shop.yaml")
    assert sorted(exposed) == ["catalog", "web"]
    assert exposed["web"]["depends_on"] == ["catalog"] and "depends_on" not in exposed["catalog"]
    third = body(out / "draft-03-shop.yaml")
    assert "- catalog   # guess: env CATALOG_URL of container app = http://catalog:8080/items" in third
    assert ("# depends on shop/orders (guess, in wave draft-02-shop, so not in depends_on): "
            "env ORDERS_URL of container app = http://orders.shop.svc.cluster.local:8080") in third
    assert ("# depends on shop/orders (guess, in wave draft-02-shop, so not in depends_on): "
            "ConfigMap catalog-config key ORDERS_HOST (envFrom of container app) = orders.shop:8080") in third
    assert "exposure: exposed   # Service web type LoadBalancer" in third
    assert "exposure: exposed   # Ingress backend Service catalog" in third
    assert "GET /healthz on port 8080" in third
    assert exposed["catalog"]["workload"]["copy_config_maps"] is True

    # the real validation, in-process and as the CLI reports it
    result = load_waves(out)
    assert result.errors == []
    assert [w.id for w in result.waves] == ["draft-01-shop", "draft-02-shop", "draft-03-shop"]
    assert all(w.dry_run and w.owner == "shop-team" for w in result.waves)
    assert cli.main(["validate", str(out)]) == cli.EXIT_OK
    for wave in result.waves:
        assert cli.main(["plan", str(out / f"{wave.id}.yaml")]) == cli.EXIT_OK


def test_rerun_refreshes_unedited_drafts_and_leaves_edited_ones_alone(cluster, tmp_path, capsys) -> None:  # noqa: ANN001
    server, kubeconfig = cluster
    out = tmp_path / "waves"
    assert run_discover(kubeconfig, out) == cli.EXIT_OK
    assert all(state(p) == "unedited" for p in out.iterdir())
    edited = out / "draft-03-shop.yaml"
    edited_text = body(edited).replace("connection: todo-review-router", "connection: shop_alb", 1)
    edited.write_text(edited_text)
    assert state(edited) == "edited"
    unchanged_text = body(out / "draft-02-shop.yaml")
    cleanup = server.store.get("cronjobs", "shop", "cleanup")  # the cluster changes: cleanup gets its TTL
    cleanup["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] = 600
    server.store.put("cronjobs", cleanup)
    capsys.readouterr()

    assert run_discover(kubeconfig, out) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert f"left alone: {edited} was edited since discover wrote it" in printed
    assert body(edited) == edited_text
    assert "ttlSecondsAfterFinished" not in body(out / "draft-01-shop.yaml")  # refreshed
    assert state(out / "draft-01-shop.yaml") == "unedited"
    assert f"wrote: {out / 'draft-01-shop.yaml'}" in printed
    assert body(out / "draft-02-shop.yaml") == unchanged_text  # same cluster, same file (timestamp kept)
    assert f"unchanged: {out / 'draft-02-shop.yaml'}" in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_drafts_no_longer_produced_are_removed_only_when_unedited(tmp_path) -> None:  # noqa: ANN001
    from include.slow_injection.discover.files import write_drafts

    write_drafts(tmp_path, {"draft-01-a.yaml": "id: draft-01-a\n", "draft-02-a.yaml": "id: draft-02-a\n",
                            "draft-03-a.yaml": "id: draft-03-a\n"})
    (tmp_path / "draft-02-a.yaml").write_text(body(tmp_path / "draft-02-a.yaml") + "# reviewed\n")
    outcome = write_drafts(tmp_path, {"draft-01-a.yaml": "id: draft-01-a\n"})
    assert outcome.unchanged == [tmp_path / "draft-01-a.yaml"]
    assert outcome.removed_stale == [tmp_path / "draft-03-a.yaml"]
    assert outcome.kept_edited == [tmp_path / "draft-02-a.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["draft-01-a.yaml", "draft-02-a.yaml"]


def test_smaller_waves_keep_dependencies_in_an_earlier_wave(cluster) -> None:  # noqa: ANN001
    from include.slow_injection.discover.inventory import connect, read_inventory

    _, kubeconfig = cluster
    api_client, source = connect(None, str(kubeconfig), "blue")
    inventory = read_inventory(api_client, source, ["shop"])
    drafts = draft(inventory, max_per_wave=1, now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    order = [(w.id, [s.spec_name for s in w.services]) for w in drafts.waves]
    assert order == [("draft-01-shop", ["cleanup"]), ("draft-02-shop", ["nightly-report"]),
                     ("draft-03-shop", ["legacy-files"]), ("draft-04-shop", ["orders"]),
                     ("draft-05-shop", ["catalog"]), ("draft-06-shop", ["web"])]
    web = yaml.safe_load(drafts.texts["draft-06-shop.yaml"])["services"][0]
    assert "depends_on" not in web  # catalog is in an earlier wave now: a comment, not a depends_on
    assert "# depends on shop/catalog (guess, in wave draft-05-shop" in drafts.texts["draft-06-shop.yaml"]
    again = draft(inventory, max_per_wave=1, now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    assert again.texts == drafts.texts  # deterministic


def test_a_dependency_cycle_is_dropped_with_its_reason() -> None:
    def dep(name: str, env: str) -> dict:
        d = deployment(name, env=[{"name": "PEER", "value": env}])
        return {"kind": "Deployment", **d}  # as read_inventory hands them over (a list call omits kind)

    source = Source(None, "kubeconfig", "blue", "http://example")
    inventory = Inventory(source, ["shop"], objects={
        "deployments": [dep("a", "http://b.shop:8080"), dep("b", "b=http://a.shop.svc")],
        "services": [{"kind": "Service", **service("a")}, {"kind": "Service", **service("b")}]})
    discovered, _ = classify(inventory)
    guesses, _ = infer(inventory, discovered)
    apply_rules(guesses, {d.key: "exposed" for d in discovered})
    assert [(str(g), g.dropped) for g in guesses] == [
        ("shop/a → shop/b", ""), ("shop/b → shop/a", "it would close the dependency cycle b → a → b")]
    assert hosts_in("jdbc:postgresql://user:pw@db.shop.svc.cluster.local:5432/app") == ["db.shop.svc.cluster.local"]


def test_an_internal_service_that_calls_an_exposed_one_moves_in_its_wave() -> None:
    def obj(kind: str, data: dict) -> dict:
        return {"kind": kind, **data}

    inventory = Inventory(Source(None, "kubeconfig", "blue", "http://example"), ["shop"], objects={
        "deployments": [obj("Deployment", deployment("web")),
                        obj("Deployment", deployment("worker", env=[{"name": "WEB", "value": "web.shop.svc:8080"}]))],
        "cronjobs": [obj("CronJob", cronjob("report"))],
        "services": [obj("Service", service("web", "NodePort")), obj("Service", service("worker"))]})
    drafts = draft(inventory, now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    assert [(w.id, [(s.spec_name, s.classified) for s in w.services]) for w in drafts.waves] == [
        ("draft-01-shop", [("report", "scheduled")]),
        ("draft-02-shop", [("web", "exposed"), ("worker", "internal")])]
    worker = yaml.safe_load(drafts.texts["draft-02-shop.yaml"])["services"][1]
    assert worker["depends_on"] == ["web"]


def test_clear_errors_for_an_unknown_context_and_an_unreachable_cluster(cluster, tmp_path, capsys) -> None:  # noqa: ANN001
    _, kubeconfig = cluster
    out = tmp_path / "waves"
    assert cli.main(["discover", "--kubeconfig", str(kubeconfig), "--context", "nope", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot load the Kubernetes client config from kubeconfig {kubeconfig}: unknown context 'nope'" in err
    closed = tmp_path / "closed.yaml"
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # discard port: nothing listens
    closed.write_text(yaml.safe_dump(config))
    assert cli.main(["discover", "--kubeconfig", str(closed), "--out", str(out)]) == 2
    assert "cannot reach the cluster at http://127.0.0.1:9" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["discover", "--out", str(out)]) == 1
    assert "give --connection CONN_ID" in capsys.readouterr().err


def test_the_cli_entry_point_runs_as_a_process(cluster, tmp_path) -> None:  # noqa: ANN001
    _, kubeconfig = cluster
    out = tmp_path / "waves"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    exe = Path(sys.executable).with_name("slow-injection")
    done = subprocess.run([str(exe), "discover", "--kubeconfig", str(kubeconfig), "--context", "blue",
                           "--namespace", "shop", "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wave 1: draft-01-shop.yaml: cleanup (scheduled), nightly-report (scheduled)" in done.stdout
    assert "not migrated: DaemonSet shop/log-agent" in done.stdout
    assert "note: the cluster does not serve statefulsets; none were read" in done.stdout  # the stand-in has none
    first = body(out / "draft-01-shop.yaml")
    assert first.startswith(DIGEST_PREFIX) and "owner: todo-review  # TODO(review)" in first
    assert json.dumps(sorted(p.name for p in out.iterdir())) == json.dumps(
        ["draft-01-shop.yaml", "draft-02-shop.yaml", "draft-03-shop.yaml"])


def test_an_airflow_connection_reaches_blue_through_the_kubernetes_hook(cluster, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    _, kubeconfig = cluster
    monkeypatch.setenv("AIRFLOW_CONN_BLUE_KUBE", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig), "cluster_context": "blue"}}))
    out = tmp_path / "waves"
    assert cli.main(["discover", "--connection", "blue_kube", "--namespace", "shop", "--out", str(out)]) == 0
    waves = load_waves(out)
    assert waves.errors == [] and len(waves.waves) == 3
    assert {w.environments.blue.platform.connection for w in waves.waves} == {"blue_kube"}
    assert "platform: {type: kubernetes, connection: blue_kube}\n" in body(out / "draft-01-shop.yaml")
    assert cli.main(["discover", "--connection", "no_such_conn", "--out", str(tmp_path / "none")]) == 1


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_an_unreviewed_exposed_draft_is_refused_before_any_change(cluster, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Even with the real platform connection and dry run unticked, the placeholder router stops the run
    at its plan step: green gets nothing, blue keeps everything."""
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_wave

    server, kubeconfig = cluster
    monkeypatch.setenv("AIRFLOW_CONN_BLUE_KUBE", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig), "cluster_context": "blue"}}))
    out = tmp_path / "waves"
    assert cli.main(["discover", "--connection", "blue_kube", "--namespace", "shop", "--out", str(out),
                     "--max-per-wave", "1"]) == 0
    before = {k: v["metadata"]["resourceVersion"] for k, v in server.store.objects.items()}
    dag = build_dag(load_wave(out / "draft-05-shop.yaml"))  # catalog alone: a small DAG to run
    monkeypatch.setenv("SLOW_INJECTION_WAVES_DIR", str(out))  # dag.test() re-parses the bundle
    run = dag.test(run_conf={"dry_run": False})
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        states = {ti.task_id: str(ti.state) for ti in session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)}
    assert run.state == "failed" and states["preparation.run_refused"] == "failed"
    ran = {t for t, s in states.items() if s not in ("skipped", "None")}
    assert ran <= {"preparation.plan_wave", "preparation.run_refused", "post_release.evaluation_report"}, ran
    from tests.test_operating_runs import _xcom

    outcome = _xcom(run.run_id, "preparation.plan_wave", "plan_outcome")
    assert outcome["state"] == "refused" and "todo-review-router" in " ".join(outcome["problems"]), outcome
    assert not server.store.list("deployments", "shop-fargate") and not server.store.list("services", "shop-fargate")
    assert {k: v["metadata"]["resourceVersion"] for k, v in server.store.objects.items()} == before
