"""SIGKILL the sending process at randomised points, then send again: every due reminder exactly once in each
simulator's own mail log (0 duplicates, 0 silently lost), and a further send that day mails nothing.
`bench/send_crash.py` runs hundreds of kill points; this runs a few per platform."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.connector.delivery.crashkit import Figures, scenario


@pytest.mark.parametrize("platform", ["exact", "moneybird", "xero"])
def test_killed_sends_never_mail_twice_and_never_drop_silently(tmp_path: Path, platform: str) -> None:
    rng = random.Random(f"crash-{platform}")
    total = Figures()
    for index in range(2):
        total.add(scenario(tmp_path / f"s{index}", rng, max_kills=4, platforms=[platform]))

    assert sum(total.kills.values()) >= 3, total.kills
    assert sum(total.duplicates.values()) == 0, total
    assert sum(total.lost.values()) == 0, total
    assert total.second_send_mails == 0
    # Xero's replay, Moneybird's reminder count and the new document of Exact's print settle every doubt
    assert total.in_doubt_tasks[platform] == 0 and total.mailed_once[platform] == total.expected[platform]


@pytest.mark.parametrize("platform", ["moneybird", "xero"])
def test_two_sends_started_at_the_same_moment_send_each_reminder_once(tmp_path: Path, platform: str) -> None:
    figures = scenario(tmp_path, random.Random(0), max_kills=0, platforms=[platform], at_once=2)

    assert figures.expected[platform] > 0
    assert sum(figures.duplicates.values()) == 0 and sum(figures.lost.values()) == 0, figures
    assert figures.mailed_once[platform] == figures.expected[platform]
