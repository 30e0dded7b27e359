"""Green's EKS Fargate profile, created in the preparation phase through the Fargate-profiles port
(drivers/aws_eks.py), idempotently: missing → created; exists and matches → no change; exists and
differs → an error naming the spec's field."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import refs, registry
from include.slow_injection.ports import ProfileConflict
from include.slow_injection.tasks.operators import WaveStep, is_dry_run


class EnsureFargateProfile(WaveStep):
    """Creates the profile unless it exists; the wait for ACTIVE is a gate (kinds/fargate_profile.py)."""

    ui_color = "#ff9900"

    def __init__(
        self, *, profile: dict[str, Any], spec_path: str = "environments.green.fargate_profile", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.profile, self.spec_path = profile, spec_path

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        profiles = registry.build("fargate_profiles", refs.fargate_profiles(self.profile))
        try:
            result = profiles.ensure(self.profile, apply=not dry_run)
        except ProfileConflict as err:
            raise AirflowFailException(f"{self.spec_path}: {err}") from err
        where = f"Fargate profile {self.profile['name']} on EKS cluster {self.profile['cluster']}"
        if result["change"] == "none":
            self.log.info("%s exists and matches the spec (%s): no change", where, result.get("status"))
        elif result["change"] == "would create":
            self.log.info("[dry-run] would create %s", where)
        return {**result, "dry_run": dry_run}
