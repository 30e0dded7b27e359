"""Bounded load generator: steady GETs through HAProxy, counted per second by who served them.

    python -m include.slow_injection.lab.load --url http://127.0.0.1:18080/ --rate 20 --duration 600 --out load.json

It stops by itself after --duration (and never targets anything but the --url it is given, which
must be on loopback). The JSON file is rewritten every second: {"seconds": {epoch: {"blue": n,
"green": n, "blue_5xx": n, "green_5xx": n, "errors": n}}}.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def one_request(url: str) -> tuple[str, int]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.headers.get("X-Served-By", "?"), response.status
    except urllib.error.HTTPError as err:
        return err.headers.get("X-Served-By", "?"), err.code
    except (urllib.error.URLError, OSError):
        return "?", 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds; the generator stops by itself")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if urllib.parse.urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the lab load generator only targets loopback addresses")
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    lock = threading.Lock()
    out = Path(args.out)

    def record(future) -> None:
        env, status = future.result()
        second = int(time.time())
        with lock:
            bucket = counts[second]
            if status == 0:
                bucket["errors"] += 1
            else:
                bucket[env] += 1
                if status >= 500:
                    bucket[f"{env}_5xx"] += 1

    def flush() -> None:
        with lock:
            data = {"seconds": {str(s): dict(c) for s, c in sorted(counts.items())}}
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(out)

    start = time.time()
    interval = 1.0 / args.rate
    next_flush = start + 1
    with ThreadPoolExecutor(max_workers=16) as pool:
        n = 0
        while (now := time.time()) - start < args.duration:
            due = start + n * interval
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            pool.submit(one_request, args.url).add_done_callback(record)
            n += 1
            if now >= next_flush:
                flush()
                next_flush = now + 1
    flush()


if __name__ == "__main__":
    main()
