"""Least privilege: the IAM policy a wave's AWS drivers need, assembled from the drivers themselves.

A driver class that calls AWS declares `iam_statements(settings) -> list[Statement]`: the actions it
calls and the resource ARNs it calls them on ("*" only where AWS has no resource-level permission).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    why: str = ""  # becomes the statement's Sid (letters and digits only)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Effect": "Allow", "Action": sorted(set(self.actions)),
                               "Resource": sorted(set(self.resources))}
        sid = "".join(ch for ch in self.why.title() if ch.isalnum())
        return {"Sid": sid, **out} if sid else out


def policy(statements: list[Statement]) -> dict[str, Any]:
    """One IAM policy document; statements with the same resources are merged, order is stable."""
    merged: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for st in statements:
        key = tuple(sorted(set(st.resources)))
        actions, whys = merged.setdefault(key, ([], []))
        actions.extend(a for a in st.actions if a not in actions)
        if st.why and st.why not in whys:
            whys.append(st.why)
    docs = []
    for resources, (actions, whys) in merged.items():
        docs.append(Statement(tuple(actions), resources, " ".join(whys[:1])).to_dict())
    _unique_sids(docs)
    return {"Version": "2012-10-17", "Statement": docs}


def _unique_sids(docs: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for doc in docs:
        sid = doc.get("Sid")
        if not sid:
            continue
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] > 1:
            doc["Sid"] = f"{sid}{seen[sid]}"
