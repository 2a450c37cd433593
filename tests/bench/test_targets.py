"""The benchmark's verdicts against the issue's targets (no benchmark is run here)."""

from types import SimpleNamespace

import pytest

from bench.report import targets


def dm_run(ack_p99, recipient_p99, stored, messages=600):
    step = {
        "offered_msgs_per_s": 200,
        "messages": messages,
        "stored": stored,
        "all_stored": stored >= messages,
        "ack": {"p99_ms": ack_p99},
        "recipient": {"p99_ms": recipient_p99},
    }
    return SimpleNamespace(results={"scenarios": {"3": {"servers": {"app": {"steps": [step]}}}}})


@pytest.mark.parametrize(
    ("ack_p99", "recipient_p99", "stored", "met"),
    [
        (4.1, 4.0, 600, True),
        (4.1, 25.0, 600, True),
        (4.1, 25.1, 600, False),
        (30.0, 4.0, 600, False),
        (4.1, 4.0, 599, False),
        (None, None, 600, False),
    ],
)
def test_dm_target_needs_both_p99s_within_25_ms_and_every_message_stored(ack_p99, recipient_p99, stored, met):
    [verdict] = targets(dm_run(ack_p99, recipient_p99, stored))
    assert verdict["met"] is met
