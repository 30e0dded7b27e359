"""The lab's Kubernetes: a real control plane from upstream binaries (control_plane.py).

    python -m include.slow_injection.lab.kube up --root .kube     # start it and stay up
    python -m include.slow_injection.lab.kube build               # build (or find) the binaries only

The lab (lab.py: `make demo`, `make drill`, tests/e2e) starts the same ControlPlane in its own process,
under .demo/lab/kube/ (its PIDs in kube/pids.json, stopped by `make demo-stop`), and seeds blue through the
API (seed.py). The stand-in API server (api_server.py, controllers.py) is no longer started from here.
"""

from __future__ import annotations

import sys

from include.slow_injection.lab.kube.control_plane import main

if __name__ == "__main__":
    sys.exit(main())
