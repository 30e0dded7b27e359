"""Post-release (after the stage phases; builders/post_release_group.py makes its tasks): blue retired where it
still holds capacity, and each data migration's reverse replication removed."""

from __future__ import annotations

from include.slow_injection import registry
from include.slow_injection.kinds import remove_replication, retire_blue
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave

PHASE = "post_release"


def retirements(wave: Wave) -> list[Action]:
    """Blue retired for each service whose blue still holds capacity (the platform driver says which)."""
    platform = registry.driver_class("platform", wave.environments.green.platform.type)
    return [
        Action(f"retire_blue_{s.name}", retire_blue.KIND.name, s.name)
        for s in wave.services
        if platform.retires_blue(s.workload.model_dump())
    ]


def replication_removals(wave: Wave) -> list[Action]:
    """Each data migration's reverse path (green → blue) removed once blue is no longer a way back."""
    return [
        Action(f"remove_replication_{m.name}", remove_replication.KIND.name, subject=m.name)
        for m in wave.data_migration
    ]
