"""The lab's Kubernetes: a real control plane from upstream binaries (control_plane.py).

    python -m include.slow_injection.lab.kube up --root .kube     # start it and stay up
    python -m include.slow_injection.lab.kube build               # build (or find) the binaries only
"""

from __future__ import annotations

import sys

from include.slow_injection.lab.kube.control_plane import main

if __name__ == "__main__":
    sys.exit(main())
