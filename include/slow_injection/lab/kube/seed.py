"""What the stand-in cluster holds before a wave: blue's web Deployment and report CronJob, and the
PodDisruptionBudget green's namespace needs (the Fargate preflight asks for one)."""

from __future__ import annotations

from typing import Any

EVERY_10_SECONDS = "* * * * * */10"  # six fields: the stand-in accepts seconds, Kubernetes does not


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    container = {"name": name, "image": f"registry.example/{name}:1",
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                               "limits": {"cpu": "500m", "memory": "512Mi"}}}
    pod = {"nodeSelector": {"eks.amazonaws.com/nodegroup": "ec2-general"}, "containers": [container]}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def cronjob(name: str, namespace: str, schedule: str) -> dict[str, Any]:
    container = {"name": name, "image": f"registry.example/{name}:1",
                 "resources": {"limits": {"cpu": "250m", "memory": "256Mi"}}}
    job = {"ttlSecondsAfterFinished": 600, "template": {"metadata": {"labels": {"app": name}},
                                                        "spec": {"restartPolicy": "Never", "containers": [container]}}}
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"schedule": schedule, "suspend": False, "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"spec": job}}}


def seed(store: Any, namespace: str, green_namespace: str, *, web: str = "web", job: str = "report",
         schedule: str = EVERY_10_SECONDS, replicas: int = 2) -> None:
    store.put("namespaces", {"metadata": {"name": namespace}}, creating=True)
    store.put("namespaces", {"metadata": {"name": green_namespace,  # a Fargate profile selects it
                                          "annotations": {"stand-in.slow-injection.io/fargate": "true"}}},
              creating=True)
    store.put("deployments", deployment(web, namespace, replicas), creating=True)
    store.put("cronjobs", cronjob(job, namespace, schedule), creating=True)
    store.put("poddisruptionbudgets", {"metadata": {"name": web, "namespace": green_namespace},
                                       "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": web}}}},
              creating=True)
