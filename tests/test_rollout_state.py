"""Rollout readiness from a Deployment's status: generation observed, replicas updated/ready/available,
and a progress deadline that fails at once."""

from __future__ import annotations

import pytest

from include.slow_injection.kubernetes.rollout import FAILED, PROGRESSING, READY, rollout_state


def deployment(generation: int = 2, spec_replicas: int = 3, **status: object) -> dict:
    base = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    return {"metadata": {"generation": generation}, "spec": {"replicas": spec_replicas}, "status": {**base, **status}}


@pytest.mark.parametrize(
    ("obj", "state", "words"),
    [
        (deployment(), READY, "3/3 replicas ready"),
        (deployment(observedGeneration=1), PROGRESSING, "has not seen generation 2"),
        (deployment(updatedReplicas=1), PROGRESSING, "1 of 3 replicas updated"),
        (deployment(replicas=4), PROGRESSING, "1 old replica(s) still terminating"),
        (deployment(availableReplicas=2), PROGRESSING, "2 of 3 updated replicas available"),
        (deployment(readyReplicas=2), PROGRESSING, "2 ready"),
        (
            deployment(
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "ReplicaSet web-1 has timed out progressing.",
                    }
                ]
            ),
            FAILED,
            "timed out",
        ),
        ({"metadata": {"generation": 1}, "spec": {"replicas": 2}}, PROGRESSING, "has not seen generation 1"),
    ],
)
def test_rollout_states(obj: dict, state: str, words: str) -> None:
    result = rollout_state(obj)
    assert result.state == state and words in result.detail
