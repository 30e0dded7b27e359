"""One discover run: read blue, plan the drafts, write them."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from include.slow_injection.discover.classify import NotMigrated, classify
from include.slow_injection.discover.dependencies import apply_rules, infer
from include.slow_injection.discover.draft_yaml import Context, render
from include.slow_injection.discover.files import Outcome, write_drafts
from include.slow_injection.discover.grouping import DraftWave, group
from include.slow_injection.discover.inventory import Inventory, connect, read_inventory


@dataclass
class Drafts:
    waves: list[DraftWave]
    texts: dict[str, str]  # file name → body (without the digest line)
    not_migrated: list[NotMigrated]
    unserved: list[str]  # kinds the cluster does not serve, so nothing of them was read


def draft(
    inventory: Inventory,
    *,
    owner: str | None = None,
    connection: str | None = None,
    max_per_wave: int = 5,
    now: dt.datetime | None = None,
    schema_ref: str = "../schema/wave.schema.json",
) -> Drafts:
    """The drafts for an inventory (pure: the same inventory and time give the same text)."""
    discovered, skipped = classify(inventory)
    guesses, unresolved = infer(inventory, discovered)
    apply_rules(guesses, {d.key: "scheduled" if d.classified == "scheduled" else "exposed" for d in discovered})
    waves = group(discovered, guesses, max_per_wave)
    wave_of = {s.key: w.id for w in waves for s in w.services}
    first_of_ns: dict[str, DraftWave] = {}
    for w in waves:
        first_of_ns.setdefault(w.namespace, w)
    texts = {}
    for w in waves:
        # a namespace's unmovable objects are listed in its first wave (or in wave 1 if it has none)
        listed = [
            n
            for n in skipped
            if first_of_ns.get(n.namespace) is w or (n.namespace not in first_of_ns and w.number == 1)
        ]
        ctx = Context(
            inventory.source,
            now or dt.datetime.now(dt.UTC),
            owner,
            connection,
            len(waves),
            guesses,
            unresolved,
            listed,
            wave_of,
            schema_ref,
            list(inventory.unreadable),
        )
        texts[w.file_name] = render(w, ctx)
    return Drafts(waves, texts, skipped, list(inventory.unserved))


def discover(
    *,
    connection: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespaces: list[str] | None,
    out_dir: Path,
    owner: str | None,
    max_per_wave: int,
) -> tuple[Drafts, Outcome]:
    api_client, source = connect(connection, kubeconfig, context)
    inventory = read_inventory(api_client, source, namespaces)
    schema = Path(__file__).resolve().parents[2] / "schema" / "wave.schema.json"
    schema_ref = Path(os.path.relpath(schema, out_dir.resolve())).as_posix()
    drafts = draft(inventory, owner=owner, connection=connection, max_per_wave=max_per_wave, schema_ref=schema_ref)
    return drafts, write_drafts(out_dir, drafts.texts)
