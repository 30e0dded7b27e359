"""The lab's stand-in Kubernetes: the API server and its controllers in real time, seeded with blue's
web Deployment and report CronJob. Not a cluster: see api_server.py and controllers.py.

    python -m include.slow_injection.lab.kube --port 16443 --namespace lab --green-namespace lab-fargate
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from functools import partial

from include.slow_injection.lab.kube.api_server import KubernetesTestServer
from include.slow_injection.lab.kube.controllers import StandInControllers
from include.slow_injection.lab.kube.seed import seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--namespace", default="lab")
    parser.add_argument("--green-namespace", default="lab-fargate")
    args = parser.parse_args(argv)
    reseed = partial(seed, namespace=args.namespace, green_namespace=args.green_namespace)
    with KubernetesTestServer(args.port, on_reset=reseed) as server:
        reseed(server.store)
        stop = StandInControllers(server.store).run_in_background()
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        print(f"stand-in Kubernetes API on {server.url} (namespaces {args.namespace}, {args.green_namespace})",
              flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
