"""Matching quality on the held-out third of the real dev fact-checks (forwarded message → its verdict).

Runs the shipped model through `match_claim` with the thresholds calibrated into it, on SQLite, once:
the fixture embeds ~700 texts with the real model (one to two minutes on a shared 2-core machine).
New claims are the same real circulated messages matched as if their verdict had never been indexed.
Floors are the measured figures (README) minus a margin: scores are deterministic, but a new release
of the embedding model or of Sastrawi would move them a little.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.match_calibration import Evaluation, evaluate, read_pairs, split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def dev_csv(shared_data: Path) -> Path:
    return shared_data / "factchecks" / "turnbackhoax_dev.csv"


@pytest.fixture(scope="session")
def held_out(dev_csv: Path) -> Evaluation:
    return evaluate(dev_csv)


def test_split_is_fixed_and_disjoint(dev_csv: Path) -> None:
    train, test = split(read_pairs(dev_csv))
    assert (len(train), len(test)) == (200, 100)
    assert not {p.url for p in train} & {p.url for p in test}
    assert split(read_pairs(dev_csv)) == (train, test)


def test_known_claims_are_found(held_out: Evaluation) -> None:
    assert held_out.queries == 100
    assert held_out.recall_at_1 >= 0.82  # measured 0.85
    assert held_out.recall_at_3 >= 0.86  # measured 0.90


def test_automatic_answers_are_right_and_not_rare(held_out: Evaluation) -> None:
    assert held_out.auto_precision >= 0.97  # measured 0.976 (41 automatic answers, one wrong)
    assert held_out.auto_coverage >= 0.32  # measured 0.41


def test_new_claims_are_not_answered_with_another_verdict(held_out: Evaluation) -> None:
    # measured 2 of 100 (issue 9's target is at most 0.5 %, not met)
    assert held_out.new_claims_auto_answered <= 2
    assert held_out.false_auto_new == held_out.new_claims_auto_answered / held_out.queries
