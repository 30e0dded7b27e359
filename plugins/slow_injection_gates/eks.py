"""Waits for green's Fargate profile to be ACTIVE: the amazon provider's sensor, returning a result
the stage decision can read (and skipping the wait in a dry-run, where nothing was created)."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.sensors.eks import EksFargateProfileStateSensor


class WaitFargateProfile(EksFargateProfileStateSensor):
    def execute(self, context: Any) -> dict[str, Any]:
        if context["params"].get("dry_run"):
            self.log.info("[dry-run] would wait for Fargate profile %s to be ACTIVE", self.fargate_profile_name)
            return {"profile": self.fargate_profile_name, "dry_run": True}
        super().execute(context)
        return {"profile": self.fargate_profile_name, "state": "ACTIVE", "dry_run": False}
