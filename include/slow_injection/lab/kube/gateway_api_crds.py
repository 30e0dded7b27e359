"""The Gateway API's standard-channel CRDs (HTTPRoute, Gateway, GatewayClass, ReferenceGrant, ...) installed
into a control plane, as a cluster that runs a Gateway API implementation has them. deploy/kube/build.sh
fetches them from the Go module sigs.k8s.io/gateway-api into the binaries' folder (gateway-api-crds.yaml);
`install` creates each through the apiextensions API and waits until the API server serves it (Established).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

CRDS_FILE = "gateway-api-crds.yaml"


def crds_path(plane: Any) -> Path:
    """gateway-api-crds.yaml beside the binaries a started (or attached) ControlPlane runs."""
    bin_dir = plane.bin_dir or json.loads(plane.state_file.read_text())["bin_dir"]
    path = Path(bin_dir) / CRDS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `bash deploy/kube/build.sh` (it fetches the Gateway API CRDs)")
    return path


def crds(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CustomResourceDefinition"]


def install(api_client: Any, path: Path, timeout: float = 60.0) -> list[str]:
    """Create every CRD of `path` (one already there is left as it is) and wait until all are Established;
    returns their names."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for crd in crds(path):
        names.append(crd["metadata"]["name"])
        try:
            ext.create_custom_resource_definition(crd, _preload_content=False)
        except ApiException as err:
            if err.status != 409:
                raise RuntimeError(f"CRD {names[-1]} refused: {err.status} {str(err.body)[:500]}") from None
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while waiting:
        waiting = [n for n in waiting if not _established(ext, n)]
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"Gateway API CRDs not Established after {timeout:g}s: {', '.join(waiting)}")
        if waiting:
            time.sleep(0.2)
    return names


def _established(ext: Any, name: str) -> bool:
    crd = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
