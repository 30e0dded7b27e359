"""Green's EKS Fargate profile, created in the preparation phase through the amazon provider's
EksHook, idempotently: missing → created; exists and matches → no change; exists and differs → an
error (EKS profiles are immutable: a changed spec needs a new profile name)."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection.tasks.operators import WaveStep, is_dry_run

UNUSABLE = ("CREATE_FAILED", "DELETING", "DELETE_FAILED")


def wanted_selectors(profile: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"namespace": s["namespace"], **({"labels": dict(s["labels"])} if s.get("labels") else {})}
            for s in profile["selectors"]]


def _selector_key(selector: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return selector["namespace"], tuple(sorted((selector.get("labels") or {}).items()))


def profile_differences(existing: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """What differs between an EKS profile (describe_fargate_profile) and the spec's; tags are left
    out (they can change in place)."""
    out = []
    if existing.get("podExecutionRoleArn") != profile["pod_execution_role_arn"]:
        out.append(f"pod_execution_role_arn: EKS has {existing.get('podExecutionRoleArn')}, "
                   f"the spec wants {profile['pod_execution_role_arn']}")
    if sorted(existing.get("subnets") or []) != sorted(profile["subnets"]):
        out.append(f"subnets: EKS has {sorted(existing.get('subnets') or [])}, the spec wants {sorted(profile['subnets'])}")
    have = sorted(_selector_key(s) for s in existing.get("selectors") or [])
    want = sorted(_selector_key(s) for s in wanted_selectors(profile))
    if have != want:
        out.append(f"selectors: EKS has {_shown(have)}, the spec wants {_shown(want)}")
    return out


def _shown(keys: list[tuple[str, tuple[tuple[str, str], ...]]]) -> str:
    return "; ".join(f"{ns} {dict(labels) if labels else ''}".strip() for ns, labels in keys)


class EnsureFargateProfile(WaveStep):
    """Creates the profile with the provider's EksHook. Not the provider's EksCreateFargateProfileOperator
    nor its EksFargateProfileStateSensor: their modules cost every DAG parse ~5.7 s (the operator pulls
    the Kubernetes client) and ~0.6 s (boto3), measured; the wait is a GateSensor (FargateProfileState)."""

    ui_color = "#ff9900"

    def __init__(self, *, profile: dict[str, Any], spec_path: str = "environments.green.fargate_profile",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.profile, self.spec_path = profile, spec_path
        self.cluster_name, self.fargate_profile_name = profile["cluster"], profile["name"]

    def _eks(self) -> Any:
        from airflow.providers.amazon.aws.hooks.eks import EksHook

        return EksHook(aws_conn_id=self.profile["aws_connection"], region_name=self.profile.get("region"))

    def _describe(self, eks: Any) -> dict[str, Any] | None:
        try:
            return eks.conn.describe_fargate_profile(
                clusterName=self.cluster_name, fargateProfileName=self.fargate_profile_name)["fargateProfile"]
        except eks.conn.exceptions.ResourceNotFoundException:
            return None

    def _judge(self, existing: dict[str, Any]) -> dict[str, Any]:
        where = f"EKS cluster {self.cluster_name}, Fargate profile {self.fargate_profile_name}"
        problems = profile_differences(existing, self.profile)
        if problems:
            raise AirflowFailException(
                f"{self.spec_path}: {where} exists and differs from the spec; profiles are immutable, so "
                f"give the spec a new profile name (or delete the old profile): " + "; ".join(problems))
        if existing.get("status") in UNUSABLE:
            raise AirflowFailException(f"{self.spec_path}: {where} is {existing['status']}; "
                                       "delete it (or pick another name) before the wave can set green up")
        self.log.info("%s exists and matches the spec (%s): no change", where, existing.get("status"))
        return {"profile": self.fargate_profile_name, "change": "none", "status": existing.get("status")}

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        eks = self._eks()
        existing = self._describe(eks)
        if existing is not None:
            return {**self._judge(existing), "dry_run": dry_run}
        if dry_run:
            self.log.info("[dry-run] would create Fargate profile %s on EKS cluster %s",
                          self.fargate_profile_name, self.cluster_name)
            return {"profile": self.fargate_profile_name, "change": "would create", "dry_run": True}
        extra: dict[str, Any] = {"subnets": list(self.profile["subnets"])}
        if self.profile.get("tags"):
            extra["tags"] = dict(self.profile["tags"])
        try:
            eks.create_fargate_profile(clusterName=self.cluster_name, fargateProfileName=self.fargate_profile_name,
                                       podExecutionRoleArn=self.profile["pod_execution_role_arn"],
                                       selectors=wanted_selectors(self.profile), **extra)
        except eks.conn.exceptions.ResourceInUseException as err:
            # Created meanwhile (or by a try whose answer was lost): judge what is there now. None
            # there: EKS is busy with another profile (one create/delete at a time): retry later.
            existing = self._describe(eks)
            if existing is None:
                raise RuntimeError(f"EKS cluster {self.cluster_name} is busy ({err}); will retry") from err
            return {**self._judge(existing), "dry_run": False}
        return {"profile": self.fargate_profile_name, "change": "created", "dry_run": False}


class FargateProfileState:
    """The profile's status as a gate reading: ACTIVE ready, CREATING (or not visible yet) waiting,
    a failed or deleting profile failed for good."""

    def __init__(self, gate: dict[str, Any]) -> None:
        from airflow.providers.amazon.aws.hooks.eks import EksHook

        self.gate = gate
        self.eks = EksHook(aws_conn_id=gate["aws_connection"], region_name=gate.get("region"))

    def read(self) -> Any:
        from include.slow_injection.ports import Readiness

        where = f"Fargate profile {self.gate['profile']} on EKS cluster {self.gate['cluster']}"
        try:
            status = self.eks.conn.describe_fargate_profile(
                clusterName=self.gate["cluster"], fargateProfileName=self.gate["profile"])["fargateProfile"]["status"]
        except self.eks.conn.exceptions.ResourceNotFoundException:
            return Readiness("waiting", f"{where} does not exist (yet)")
        if status == "ACTIVE":
            return Readiness("ready", f"{where} is ACTIVE")
        return Readiness("failed" if status in UNUSABLE else "waiting", f"{where} is {status}")
