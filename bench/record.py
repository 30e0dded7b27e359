"""One line per bench run in bench/results/<bench>.jsonl: when, on what machine, under what load, then its figures."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


class Record:
    """Made when the bench starts, so the line shows the load average before and after it (machines are shared)."""

    def __init__(self) -> None:
        self.load_before = os.getloadavg()

    def header(self) -> dict[str, Any]:
        return {
            "date": dt.date.today().isoformat(),
            "machine": f"{platform.node()} {os.cpu_count()} cpu",
            "load_average": {
                "before": [round(x, 2) for x in self.load_before],
                "after": [round(x, 2) for x in os.getloadavg()],
            },
        }

    def append(self, bench: str, fields: dict[str, Any]) -> None:
        RESULTS.mkdir(exist_ok=True)
        with open(RESULTS / f"{bench}.jsonl", "a") as out:
            out.write(json.dumps({**self.header(), **fields}) + "\n")
