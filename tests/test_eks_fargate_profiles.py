"""Fargate profiles read from EKS (moto in server mode, through the amazon provider's EksHook) drive
the preflight's profile-match simulation, like profiles written in the spec. The workload is read from the
real control plane (tests/kube.py); EKS's profiles select its green namespaces by wildcard."""

from __future__ import annotations

import json

import pytest

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from tests.support.aws import MotoServer
from tests.support.kube_support import deployment


@pytest.fixture(scope="module")
def eks_endpoint():
    server = MotoServer().start()  # its own account: the shared one is reset per test
    url = server.url
    eks = server.client("eks")
    eks.create_cluster(
        name="prod", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": ["subnet-1"]}
    )
    for name, selectors in [
        ("shop-web", [{"namespace": "shop-fargate-*", "labels": {"compute": "fargate"}}]),
        ("batch", [{"namespace": "batch-*"}]),
    ]:
        eks.create_fargate_profile(
            fargateProfileName=name,
            clusterName="prod",
            selectors=selectors,
            podExecutionRoleArn="arn:aws:iam::123456789012:role/fargate",
            subnets=["subnet-1"],
        )
    yield url
    server.stop()


@pytest.fixture
def cluster(monkeypatch, eks_endpoint, kube):
    """Blue's web Deployment in its namespace; green's namespace one the `shop-web` profile selects."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_MOTO",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"region_name": "eu-west-1", "endpoint_url": eks_endpoint},
            }
        ),
    )
    api = KubeAccess(kube.api_client)
    blue = kube.namespace("shop")
    api.create("Deployment", blue, deployment("web", blue, 2))
    web = {"kind": "Deployment", "namespace": blue, "name": "web", "green_namespace": kube.namespace("shop-fargate")}
    return api, web, kube


def driver(api: KubeAccess, **settings: object) -> KubernetesPlatform:
    return KubernetesPlatform(
        api,
        api,
        KubernetesPlatform.Settings(
            fargate_profiles_from={"cluster": "prod", "aws_connection": "aws_moto"}, **settings
        ),
    )


def profile_findings(findings: list[str]) -> list[str]:
    return [f for f in findings if "[fargate-profile]" in f]


def test_a_green_copy_labelled_for_an_eks_profile_matches_it(cluster) -> None:
    api, web, _ = cluster
    assert profile_findings(driver(api, add_labels={"compute": "fargate"}).preflight(web)) == []


def test_without_the_label_no_eks_profile_matches_and_the_pods_would_stay_pending(cluster) -> None:
    api, web, _ = cluster
    green = web["green_namespace"]
    findings = profile_findings(driver(api).preflight(web))
    assert findings == [
        f"Deployment {green}/web: no Fargate profile selects namespace {green} with "
        "labels {'app': 'web'}: its pods would stay Pending [fargate-profile]"
    ]


def test_a_wildcard_namespace_profile_from_eks_matches(cluster) -> None:
    api, web, kube = cluster
    workload = {**web, "green_namespace": kube.namespace("batch")}
    assert profile_findings(driver(api).preflight(workload)) == []


def test_an_unknown_eks_cluster_is_an_error_that_names_it(cluster) -> None:
    api, web, _ = cluster
    platform = KubernetesPlatform(
        api, api, KubernetesPlatform.Settings(fargate_profiles_from={"cluster": "nope", "aws_connection": "aws_moto"})
    )
    with pytest.raises(Exception, match="nope"):
        platform.preflight(web)


def test_every_eks_call_of_the_profile_read_is_in_the_driver_s_iam_statements(cluster, api_calls) -> None:
    from include.slow_injection.aws.iam import policy
    from tests.support.aws import uncovered_calls

    api, web, _ = cluster
    settings = KubernetesPlatform.Settings(fargate_profiles_from={"cluster": "prod", "aws_connection": "aws_moto"})
    driver(api).preflight(web)
    assert {c.action for c in api_calls.calls} >= {"eks:ListFargateProfiles", "eks:DescribeFargateProfile"}
    assert uncovered_calls(policy(KubernetesPlatform.iam_statements(settings)), api_calls.calls) == []
