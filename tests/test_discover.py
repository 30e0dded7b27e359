"""`slow-injection discover` against a real control plane (kube-apiserver, controllers, kwok; official
client over HTTPS, through the cncf-kubernetes KubernetesHook and a kubeconfig): a mixed namespace,
created through the API, becomes draft waves that classify, guess dependencies, carry the Fargate
preflight as comments, validate, and survive a re-run without losing a human's edits.

Moved from the old stand-in API server. Dropped: the note for a kind the cluster does not serve (the
stand-in served no StatefulSets; a real 1.35 API server serves every kind discover reads, so the note
is checked to be absent instead). The namespace now has a StatefulSet and a one-off Job too (real
controllers run them), which discover lists as not migrated. Each test has its own namespace
(`shop-<hex>`), so file names and DNS names carry it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from include.slow_injection import cli
from include.slow_injection.discover.classify import classify
from include.slow_injection.discover.dependencies import apply_rules, hosts_in, infer
from include.slow_injection.discover.files import DIGEST_PREFIX, state
from include.slow_injection.discover.inventory import SYSTEM_NAMESPACES, Inventory, Source
from include.slow_injection.discover.run import draft
from include.slow_injection.drivers.kubernetes import KubeAccess
from include.slow_injection.spec import load_waves
from tests.support.kube import wait_for

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"cpu": "500m", "memory": "512Mi"}
EC2 = {"eks.amazonaws.com/nodegroup": "ec2-general"}  # blue's node group (the control plane's kwok nodes)


def pod(name: str, env: list | None = None, **extra) -> dict:
    container = {"name": "app", "image": f"{name}:1", "resources": {"requests": FIXED, "limits": FIXED}}
    if env:
        container["env"] = env
    container.update(extra.pop("container", {}))
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container], **extra}}


def deployment(name: str, ns: str = "shop", **pod_extra) -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": pod(name, **pod_extra)},
    }


def cronjob(name: str, env: list | None = None, ttl: int | None = 300, ns: str = "shop") -> dict:
    template = pod(name, env)
    template["spec"]["restartPolicy"] = "Never"
    job = {"template": template, **({"ttlSecondsAfterFinished": ttl} if ttl is not None else {})}
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}},
    }


def service(name: str, kind: str = "ClusterIP", ns: str = "shop") -> dict:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 8080, "targetPort": 8080}]},
    }


def seed(api: KubeAccess, ns: str, system_deployment: str) -> None:
    """A shop namespace as a company would have it, and a Deployment in kube-system discover must skip."""
    apps, batch = client.AppsV1Api(api.api_client), client.BatchV1Api(api.api_client)
    api.create(
        "CronJob",
        ns,
        cronjob(
            "nightly-report",
            ns=ns,
            env=[{"name": "ORDERS_API", "value": f"http://orders.{ns}.svc.cluster.local:8080/api/v1"}],
        ),
    )
    api.create("CronJob", ns, cronjob("cleanup", ttl=None, ns=ns))  # no ttlSecondsAfterFinished: a preflight finding
    api.create(
        "Deployment",
        ns,
        deployment(
            "web",
            ns,
            nodeSelector=EC2,
            env=[
                {"name": "ORDERS_URL", "value": f"http://orders.{ns}.svc.cluster.local:8080"},
                {"name": "CATALOG_URL", "value": "http://catalog:8080/items"},
            ],
            container={"readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}},
        ),
    )
    api.create("Service", ns, service("web", "LoadBalancer", ns))
    api.create(
        "Deployment",
        ns,
        deployment(
            "catalog", ns, nodeSelector=EC2, container={"envFrom": [{"configMapRef": {"name": "catalog-config"}}]}
        ),
    )
    api.create(
        "ConfigMap",
        ns,
        {
            "metadata": {"name": "catalog-config", "namespace": ns},
            "data": {"ORDERS_HOST": f"orders.{ns}:8080", "LOG_LEVEL": "info"},
        },
    )
    api.create("Service", ns, service("catalog", ns=ns))
    client.NetworkingV1Api(api.api_client).create_namespaced_ingress(
        ns,
        {
            "metadata": {"name": "shop", "namespace": ns},
            "spec": {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": "/catalog",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "catalog", "port": {"number": 8080}}},
                                }
                            ]
                        }
                    }
                ]
            },
        },
    )
    api.create("Deployment", ns, deployment("orders", ns, nodeSelector=EC2))
    api.create("Service", ns, service("orders", ns=ns))
    client.PolicyV1Api(api.api_client).create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "orders", "namespace": ns},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "orders"}}},
        },
    )
    apps.create_namespaced_daemon_set(
        ns,
        {
            "metadata": {"name": "log-agent", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "log-agent"}}, "template": pod("log-agent")},
        },
    )
    apps.create_namespaced_stateful_set(
        ns,
        {
            "metadata": {"name": "cache", "namespace": ns},
            "spec": {
                "serviceName": "cache",
                "replicas": 1,
                "selector": {"matchLabels": {"app": "cache"}},
                "template": pod("cache"),
            },
        },
    )
    migrate = pod("db-migrate")
    migrate["spec"]["restartPolicy"] = "Never"
    batch.create_namespaced_job(
        ns, {"metadata": {"name": "db-migrate", "namespace": ns}, "spec": {"template": migrate}}
    )
    api.create(
        "Deployment",
        ns,
        deployment("legacy-files", ns, nodeSelector=EC2, volumes=[{"name": "data", "hostPath": {"path": "/srv/data"}}]),
    )
    api.create("Deployment", "kube-system", deployment(system_deployment, "kube-system"))


class Cluster:
    """One test's blue: its namespace, the admin access, a kubeconfig whose context is `blue`."""

    def __init__(self, kube, tmp_path: Path) -> None:
        self.ns = kube.namespace("shop")
        self.url = kube.plane.url
        self.api = KubeAccess(kube.api_client)
        self.system_deployment = f"coredns-{uuid.uuid4().hex[:6]}"
        seed(self.api, self.ns, self.system_deployment)
        self.kubeconfig = tmp_path / "kubeconfig.yaml"
        self.kubeconfig.write_text(yaml.safe_dump(kube.plane.kubeconfig(context="blue")))

    def file(self, number: int) -> str:
        return f"draft-{number:02d}-{self.ns}.yaml"

    def wave(self, number: int) -> str:
        return f"draft-{number:02d}-{self.ns}"

    def others_quiet(self) -> None:
        """Wait until no other test's namespace (being deleted) still holds a workload discover would draft
        or list: reading every namespace then sees this test's alone."""
        kinds = [
            ("AppsV1Api", "list_deployment_for_all_namespaces"),
            ("BatchV1Api", "list_cron_job_for_all_namespaces"),
            ("AppsV1Api", "list_daemon_set_for_all_namespaces"),
            ("AppsV1Api", "list_stateful_set_for_all_namespaces"),
            ("BatchV1Api", "list_job_for_all_namespaces"),
        ]

        def strays() -> list[str]:
            return [
                f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}"
                for api, method in kinds
                for o in self.api.list(api, method)
                if o["metadata"]["namespace"] != self.ns and o["metadata"]["namespace"] not in SYSTEM_NAMESPACES
            ]

        wait_for(lambda: not strays() or None, "other tests' namespaces to empty", timeout=90, interval=0.5)


@pytest.fixture
def cluster(kube, tmp_path):
    blue = Cluster(kube, tmp_path)
    yield blue
    blue.api.delete("Deployment", "kube-system", blue.system_deployment)


def run_discover(kubeconfig: Path, out: Path, *extra: str) -> int:
    return cli.main(
        [
            "discover",
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "blue",
            "--out",
            str(out),
            "--owner",
            "shop-team",
            *extra,
        ]
    )


def body(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def services_of(path: Path) -> dict[str, dict]:
    return {s["name"]: s for s in yaml.safe_load(body(path))["services"]}


def test_a_mixed_namespace_becomes_reviewable_draft_waves_that_validate(cluster, tmp_path, capsys) -> None:
    ns, kubeconfig = cluster.ns, cluster.kubeconfig
    out = tmp_path / "waves"
    cluster.others_quiet()
    assert run_discover(kubeconfig, out) == cli.EXIT_OK  # every namespace but the system ones
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [cluster.file(1), cluster.file(2), cluster.file(3)]

    # wave 1: the scheduled jobs only; the job's guess on orders is dropped by the spec rule, with the reason
    jobs = services_of(out / cluster.file(1))
    assert {n: s["exposure"] for n, s in jobs.items()} == {"cleanup": "scheduled", "nightly-report": "scheduled"}
    assert all("depends_on" not in s for s in jobs.values())
    first = body(out / cluster.file(1))
    assert (
        "# dropped guess: depends on orders (env ORDERS_API of container app = "
        f"http://orders.{ns}.svc.cluster.local:8080/api/v1): scheduled jobs migrate before exposed" in first
    )
    assert f"#   - CronJob {ns}/cleanup: Jobs need ttlSecondsAfterFinished" in first
    assert f"not migrated: DaemonSet {ns}/log-agent — DaemonSets do not run on Fargate" in first
    assert f"not migrated: StatefulSet {ns}/cache — a wave moves Deployments and CronJobs only" in first
    assert f"not migrated: Job {ns}/db-migrate — a one-off Job (no CronJob owns it)" in first
    assert cluster.system_deployment not in first and "kube-system" not in printed
    assert f"from kubeconfig {kubeconfig}, context blue, server {cluster.url}" in first
    assert first.index("a human must review it") < first.index(f"\nid: {cluster.wave(1)}")
    assert "the connection\n# todo-review-kube does not exist" in first  # what stops an unreviewed run
    schema_ref = first.split("# yaml-language-server: $schema=")[1].split("\n")[0]
    assert (out / schema_ref).resolve() == ROOT / "include" / "schema" / "wave.schema.json"

    # wave 2: internal services (drafted as exposed, with the explanation); hostPath found by the preflight
    internal = services_of(out / cluster.file(2))
    assert sorted(internal) == ["legacy-files", "orders"]
    assert all(
        s["exposure"] == "exposed" and s["router"]["connection"] == "todo-review-router" for s in internal.values()
    )
    second = body(out / cluster.file(2))
    assert "# internal service: the spec has no exposure for in-cluster-only services" in second
    assert f"#   - Deployment {ns}/legacy-files: hostPath volume data is not supported on Fargate [host-path]" in second
    assert f"Deployment {ns}/orders: no PodDisruptionBudget" not in second  # orders has one
    assert internal["orders"]["workload"] == {
        "kind": "Deployment",
        "namespace": ns,
        "name": "orders",
        "green_namespace": f"{ns}-fargate",
        "copy_services": ["orders"],
    }

    # wave 3: the user-facing services; web depends on catalog (same wave) and on orders (earlier wave)
    exposed = services_of(out / cluster.file(3))
    assert sorted(exposed) == ["catalog", "web"]
    assert exposed["web"]["depends_on"] == ["catalog"] and "depends_on" not in exposed["catalog"]
    third = body(out / cluster.file(3))
    assert "- catalog   # guess: env CATALOG_URL of container app = http://catalog:8080/items" in third
    assert (
        f"# depends on {ns}/orders (guess, in wave {cluster.wave(2)}, so not in depends_on): "
        f"env ORDERS_URL of container app = http://orders.{ns}.svc.cluster.local:8080"
    ) in third
    assert (
        f"# depends on {ns}/orders (guess, in wave {cluster.wave(2)}, so not in depends_on): "
        f"ConfigMap catalog-config key ORDERS_HOST (envFrom of container app) = orders.{ns}:8080"
    ) in third
    assert "exposure: exposed   # Service web type LoadBalancer" in third
    assert "exposure: exposed   # Ingress backend Service catalog" in third
    assert "GET /healthz on port 8080" in third
    assert exposed["catalog"]["workload"]["copy_config_maps"] is True

    # the real validation, in-process and as the CLI reports it
    result = load_waves(out)
    assert result.errors == []
    assert [w.id for w in result.waves] == [cluster.wave(1), cluster.wave(2), cluster.wave(3)]
    assert all(w.dry_run and w.owner == "shop-team" for w in result.waves)
    assert cli.main(["validate", str(out)]) == cli.EXIT_OK
    for wave in result.waves:
        assert cli.main(["plan", str(out / f"{wave.id}.yaml")]) == cli.EXIT_OK


def test_rerun_refreshes_unedited_drafts_and_leaves_edited_ones_alone(cluster, tmp_path, capsys) -> None:
    kubeconfig, only = cluster.kubeconfig, ("--namespace", cluster.ns)
    out = tmp_path / "waves"
    assert run_discover(kubeconfig, out, *only) == cli.EXIT_OK
    assert all(state(p) == "unedited" for p in out.iterdir())
    edited = out / cluster.file(3)
    edited_text = body(edited).replace("connection: todo-review-router", "connection: shop_alb", 1)
    edited.write_text(edited_text)
    assert state(edited) == "edited"
    unchanged_text = body(out / cluster.file(2))
    # the cluster changes: cleanup gets its TTL
    cluster.api.patch(
        "CronJob", cluster.ns, "cleanup", {"spec": {"jobTemplate": {"spec": {"ttlSecondsAfterFinished": 600}}}}
    )
    capsys.readouterr()

    assert run_discover(kubeconfig, out, *only) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert f"left alone: {edited} was edited since discover wrote it" in printed
    assert body(edited) == edited_text
    assert "ttlSecondsAfterFinished" not in body(out / cluster.file(1))  # refreshed
    assert state(out / cluster.file(1)) == "unedited"
    assert f"wrote: {out / cluster.file(1)}" in printed
    assert body(out / cluster.file(2)) == unchanged_text  # same cluster, same file (timestamp kept)
    assert f"unchanged: {out / cluster.file(2)}" in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_drafts_no_longer_produced_are_removed_only_when_unedited(tmp_path) -> None:
    from include.slow_injection.discover.files import write_drafts

    write_drafts(
        tmp_path,
        {
            "draft-01-a.yaml": "id: draft-01-a\n",
            "draft-02-a.yaml": "id: draft-02-a\n",
            "draft-03-a.yaml": "id: draft-03-a\n",
        },
    )
    (tmp_path / "draft-02-a.yaml").write_text(body(tmp_path / "draft-02-a.yaml") + "# reviewed\n")
    outcome = write_drafts(tmp_path, {"draft-01-a.yaml": "id: draft-01-a\n"})
    assert outcome.unchanged == [tmp_path / "draft-01-a.yaml"]
    assert outcome.removed_stale == [tmp_path / "draft-03-a.yaml"]
    assert outcome.kept_edited == [tmp_path / "draft-02-a.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["draft-01-a.yaml", "draft-02-a.yaml"]


def test_smaller_waves_keep_dependencies_in_an_earlier_wave(cluster) -> None:
    from include.slow_injection.discover.inventory import connect, read_inventory

    ns = cluster.ns
    api_client, source = connect(None, str(cluster.kubeconfig), "blue")
    inventory = read_inventory(api_client, source, [ns])
    drafts = draft(inventory, max_per_wave=1, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    order = [(w.id, [s.spec_name for s in w.services]) for w in drafts.waves]
    assert order == [
        (cluster.wave(1), ["cleanup"]),
        (cluster.wave(2), ["nightly-report"]),
        (cluster.wave(3), ["legacy-files"]),
        (cluster.wave(4), ["orders"]),
        (cluster.wave(5), ["catalog"]),
        (cluster.wave(6), ["web"]),
    ]
    web = yaml.safe_load(drafts.texts[cluster.file(6)])["services"][0]
    assert "depends_on" not in web  # catalog is in an earlier wave now: a comment, not a depends_on
    assert f"# depends on {ns}/catalog (guess, in wave {cluster.wave(5)}" in drafts.texts[cluster.file(6)]
    again = draft(read_inventory(api_client, source, [ns]), max_per_wave=1, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert again.texts == drafts.texts  # deterministic, also across two reads of a live cluster


def test_a_dependency_cycle_is_dropped_with_its_reason() -> None:
    def dep(name: str, env: str) -> dict:
        d = deployment(name, env=[{"name": "PEER", "value": env}])
        return {"kind": "Deployment", **d}  # as read_inventory hands them over (a list call omits kind)

    source = Source(None, "kubeconfig", "blue", "http://example")
    inventory = Inventory(
        source,
        ["shop"],
        objects={
            "deployments": [dep("a", "http://b.shop:8080"), dep("b", "b=http://a.shop.svc")],
            "services": [{"kind": "Service", **service("a")}, {"kind": "Service", **service("b")}],
        },
    )
    discovered, _ = classify(inventory)
    guesses, _ = infer(inventory, discovered)
    apply_rules(guesses, {d.key: "exposed" for d in discovered})
    assert [(str(g), g.dropped) for g in guesses] == [
        ("shop/a → shop/b", ""),
        ("shop/b → shop/a", "it would close the dependency cycle b → a → b"),
    ]
    assert hosts_in("jdbc:postgresql://user:pw@db.shop.svc.cluster.local:5432/app") == ["db.shop.svc.cluster.local"]


def test_an_internal_service_that_calls_an_exposed_one_moves_in_its_wave() -> None:
    def obj(kind: str, data: dict) -> dict:
        return {"kind": kind, **data}

    inventory = Inventory(
        Source(None, "kubeconfig", "blue", "http://example"),
        ["shop"],
        objects={
            "deployments": [
                obj("Deployment", deployment("web")),
                obj("Deployment", deployment("worker", env=[{"name": "WEB", "value": "web.shop.svc:8080"}])),
            ],
            "cronjobs": [obj("CronJob", cronjob("report"))],
            "services": [obj("Service", service("web", "NodePort")), obj("Service", service("worker"))],
        },
    )
    drafts = draft(inventory, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert [(w.id, [(s.spec_name, s.classified) for s in w.services]) for w in drafts.waves] == [
        ("draft-01-shop", [("report", "scheduled")]),
        ("draft-02-shop", [("web", "exposed"), ("worker", "internal")]),
    ]
    worker = yaml.safe_load(drafts.texts["draft-02-shop.yaml"])["services"][1]
    assert worker["depends_on"] == ["web"]


def test_clear_errors_for_an_unknown_context_and_an_unreachable_cluster(cluster, tmp_path, capsys) -> None:
    from include.slow_injection.lab.kube.control_plane import free_ports

    kubeconfig = cluster.kubeconfig
    out = tmp_path / "waves"
    assert cli.main(["discover", "--kubeconfig", str(kubeconfig), "--context", "nope", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot load the Kubernetes client config from kubeconfig {kubeconfig}: unknown context 'nope'" in err
    closed = tmp_path / "closed.yaml"
    config = yaml.safe_load(kubeconfig.read_text())
    [port] = free_ports(1)  # bound, then closed: nothing listens there
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    closed.write_text(yaml.safe_dump(config))
    assert cli.main(["discover", "--kubeconfig", str(closed), "--out", str(out)]) == 2
    assert f"cannot reach the cluster at https://127.0.0.1:{port}" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["discover", "--out", str(out)]) == 1
    assert "give --connection CONN_ID" in capsys.readouterr().err


def test_the_cli_entry_point_runs_as_a_process(cluster, tmp_path) -> None:
    ns, kubeconfig = cluster.ns, cluster.kubeconfig
    out = tmp_path / "waves"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    exe = Path(sys.executable).with_name("slow-injection")
    done = subprocess.run(
        [
            str(exe),
            "discover",
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "blue",
            "--namespace",
            ns,
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"wave 1: {cluster.file(1)}: cleanup (scheduled), nightly-report (scheduled)" in done.stdout
    assert f"not migrated: DaemonSet {ns}/log-agent" in done.stdout
    assert f"not migrated: StatefulSet {ns}/cache" in done.stdout
    assert "does not serve" not in done.stdout  # a real API server serves every kind discover reads
    first = body(out / cluster.file(1))
    assert first.startswith(DIGEST_PREFIX) and "owner: todo-review  # TODO(review)" in first
    assert json.dumps(sorted(p.name for p in out.iterdir())) == json.dumps(
        [cluster.file(1), cluster.file(2), cluster.file(3)]
    )


def test_an_airflow_connection_reaches_blue_through_the_kubernetes_hook(cluster, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BLUE_KUBE",
        json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(cluster.kubeconfig), "cluster_context": "blue"},
            }
        ),
    )
    out = tmp_path / "waves"
    assert cli.main(["discover", "--connection", "blue_kube", "--namespace", cluster.ns, "--out", str(out)]) == 0
    waves = load_waves(out)
    assert waves.errors == [] and len(waves.waves) == 3
    assert {w.environments.blue.platform.connection for w in waves.waves} == {"blue_kube"}
    assert "platform: {type: kubernetes, connection: blue_kube}\n" in body(out / cluster.file(1))
    assert f"server {cluster.url}" in body(out / cluster.file(1))
    assert cli.main(["discover", "--connection", "no_such_conn", "--out", str(tmp_path / "none")]) == 1


def test_read_access_to_the_namespace_alone_is_enough(cluster, kube, tmp_path, capsys) -> None:
    """As docs/preparing-a-migration.md says: with --namespace, listing needs only get/list on those
    namespaces. Here the identity has Kubernetes' own `view` role in the namespace and nothing cluster-wide
    (no StorageClasses, which only the PVC rule reads): the drafts are written, and say what could not be read."""
    ns = cluster.ns
    core, rbac = client.CoreV1Api(cluster.api.api_client), client.RbacAuthorizationV1Api(cluster.api.api_client)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "reader-view"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        },
    )
    core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": "shared"},
            "spec": {
                "storageClassName": "efs-sc",
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    cluster.api.create(
        "Deployment",
        ns,
        deployment(
            "uploads",
            ns,
            nodeSelector=EC2,
            volumes=[{"name": "files", "persistentVolumeClaim": {"claimName": "shared"}}],
        ),
    )
    token = core.create_namespaced_service_account_token(
        "reader", ns, {"spec": {"expirationSeconds": 600}}
    ).status.token
    reader = tmp_path / "reader.yaml"
    reader.write_text(yaml.safe_dump(kube.plane.kubeconfig("reader", token, context="blue")))
    out = tmp_path / "waves"

    assert run_discover(reader, out, "--namespace", ns) == cli.EXIT_OK, capsys.readouterr().err
    result = load_waves(out)
    assert result.errors == [] and len(result.waves) == 3
    second = body(out / cluster.file(2))
    assert "uploads" in services_of(out / cluster.file(2))
    assert "storage classes could not be read (HTTP 403 Forbidden)" in second
    assert f"#   - Deployment {ns}/uploads: PVC shared uses efs-sc (provisioner unknown)" in second
    # without --namespace the identity cannot even list namespaces: a clear refusal, exit 2
    assert run_discover(reader, tmp_path / "all") == 2
    assert "refused to list namespaces: HTTP 403" in capsys.readouterr().err


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_an_unreviewed_exposed_draft_is_refused_before_any_change(cluster, tmp_path, monkeypatch) -> None:
    """Even with the real platform connection and dry run unticked, the placeholder router stops the run
    at its plan step: green gets nothing, blue keeps everything."""
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_wave

    ns = cluster.ns
    monkeypatch.setenv(
        "AIRFLOW_CONN_BLUE_KUBE",
        json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(cluster.kubeconfig), "cluster_context": "blue"},
            }
        ),
    )
    out = tmp_path / "waves"
    assert (
        cli.main(["discover", "--connection", "blue_kube", "--namespace", ns, "--out", str(out), "--max-per-wave", "1"])
        == 0
    )
    before = written(cluster.api, ns)
    dag = build_dag(load_wave(out / cluster.file(5)))  # catalog alone: a small DAG to run
    monkeypatch.setenv("SLOW_INJECTION_WAVES_DIR", str(out))  # dag.test() re-parses the bundle
    run = dag.test(run_conf={"dry_run": False})
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        states = {
            ti.task_id: str(ti.state)
            for ti in session.query(TaskInstance).filter(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id
            )
        }
    assert run.state == "failed" and states["preparation.run_refused"] == "failed"
    ran = {t for t, s in states.items() if s not in ("skipped", "None")}
    assert ran <= {"preparation.plan_wave", "preparation.run_refused", "post_release.evaluation_report"}, ran
    from tests.support.waves import _xcom

    outcome = _xcom(run.run_id, "preparation.plan_wave", "plan_outcome")
    assert outcome["state"] == "refused" and "todo-review-router" in " ".join(outcome["problems"]), outcome
    green = f"{ns}-fargate"
    with pytest.raises(client.ApiException) as missing:  # green was never even created
        client.CoreV1Api(cluster.api.api_client).read_namespace(green)
    assert missing.value.status == 404
    assert written(cluster.api, ns) == before  # blue keeps everything (controllers' status writes aside)


CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)  # the Deployment controller writes it, late or not


def _ours(annotations: dict | None) -> dict | None:
    kept = {k: v for k, v in (annotations or {}).items() if k not in CONTROLLER_ANNOTATIONS}
    return kept or None


def written(api: KubeAccess, ns: str) -> dict[str, dict]:
    """What a writer decides of every object in `ns` (labels, annotations, spec or data), by kind and name."""
    calls = [
        ("AppsV1Api", "list_namespaced_deployment"),
        ("BatchV1Api", "list_namespaced_cron_job"),
        ("CoreV1Api", "list_namespaced_service"),
        ("CoreV1Api", "list_namespaced_config_map"),
        ("NetworkingV1Api", "list_namespaced_ingress"),
        ("PolicyV1Api", "list_namespaced_pod_disruption_budget"),
        ("AppsV1Api", "list_namespaced_daemon_set"),
        ("AppsV1Api", "list_namespaced_stateful_set"),
    ]
    found = {
        f"{o['kind']}/{o['metadata']['name']}": {
            "labels": o["metadata"].get("labels"),
            "annotations": _ours(o["metadata"].get("annotations")),
            "spec": o.get("spec"),
            "data": o.get("data"),
        }
        for api_name, method in calls
        for o in api.list(api_name, method, ns)
    }
    assert len(found) > 10, found.keys()
    return found
