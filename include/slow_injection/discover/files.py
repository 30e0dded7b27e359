"""Writing drafts safely: a digest of what discover wrote, so a human's edit is never overwritten,
and whole files only (a temp file renamed into place)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from include.slow_injection.discover.draft_yaml import TIMESTAMP_PREFIX

DIGEST_PREFIX = "# discover-digest: sha256:"
DRAFT_GLOB = "draft-*.yaml"
State = Literal["absent", "unedited", "edited"]


@dataclass
class Outcome:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    kept_edited: list[Path] = field(default_factory=list)  # a human changed it: left alone
    removed_stale: list[Path] = field(default_factory=list)  # unedited drafts discover no longer produces


def digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def stamped(body: str) -> str:
    """The file text: the digest line over the body, then the body."""
    return f"{DIGEST_PREFIX}{digest(body)}\n{body}"


def state(path: Path) -> State:
    """absent; unedited (its body still matches the digest line); edited (it does not, or no digest line)."""
    if not path.exists():
        return "absent"
    first, _, body = path.read_text(encoding="utf-8").partition("\n")
    if first.startswith(DIGEST_PREFIX) and first[len(DIGEST_PREFIX) :].strip() == digest(body):
        return "unedited"
    return "edited"


def write_drafts(out_dir: Path, drafts: dict[str, str]) -> Outcome:
    """Write each draft (file name → body) unless a human edited the file; remove unedited drafts
    that this run no longer produces."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome()
    for name, body in sorted(drafts.items()):
        path = out_dir / name
        current = state(path)
        if current == "edited":
            outcome.kept_edited.append(path)
        elif current == "unedited" and _stable(path.read_text(encoding="utf-8").partition("\n")[2]) == _stable(body):
            outcome.unchanged.append(path)
        else:
            atomic_write(path, stamped(body))
            outcome.written.append(path)
    for path in sorted(out_dir.glob(DRAFT_GLOB)):
        if path.name in drafts:
            continue
        if state(path) == "unedited":
            path.unlink()
            outcome.removed_stale.append(path)
        else:
            outcome.kept_edited.append(path)
    return outcome


def atomic_write(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it (rename is atomic on one filesystem)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".discover-", suffix=".tmp")  # '.': not a wave file
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stable(body: str) -> str:
    """The body without its timestamp: a re-run that finds the same cluster rewrites nothing."""
    return "\n".join(line for line in body.splitlines() if not line.startswith(TIMESTAMP_PREFIX))
