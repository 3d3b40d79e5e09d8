"""The rating scale maps onto ClaimReview, and a verdict's JSON-LD has the fields search engines read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fact_team_console.claimreview import BEST, SCALE, WORST, claim_review, rating_info
from knowledge_base.models import Rating, Verdict


def test_every_rating_has_a_value_within_the_scale() -> None:
    assert set(SCALE) == set(Rating)
    for rating in Rating:
        assert WORST <= rating_info(rating).value <= BEST
    assert rating_info("BENAR").value == BEST
    assert rating_info("HOAKS").value == rating_info("SALAH").value == WORST
    assert rating_info("SALAH").value < rating_info("MENYESATKAN").value < rating_info("SEBAGIAN BENAR").value


def test_an_imported_label_outside_the_scale_still_renders() -> None:
    assert rating_info("PARODI").tone == "neutral"


def test_claim_review_has_the_keys_of_the_schema_org_examples(shared_data: Path) -> None:
    verdict = Verdict(
        id=7,
        claim="Air PDAM Kupang tercemar racun",
        rating="HOAKS",
        summary="Hasil uji lab normal.",
        sources=["https://kupangkota.go.id/a"],
        published_at=datetime(2026, 5, 2, 9, tzinfo=UTC),
    )
    data = claim_review(verdict, "https://cekfakta.example/verdicts/7")
    example = json.loads((shared_data / "claimreview" / "schemaorg_eg-0324.jsonld").read_text())
    for key in ("@context", "@type", "datePublished", "url", "author", "claimReviewed", "reviewRating"):
        assert key in data, key
        assert key in example
    assert data["reviewRating"] == {
        "@type": "Rating",
        "ratingValue": 1,
        "bestRating": 5,
        "worstRating": 1,
        "alternateName": "HOAKS",
    }
    assert data["datePublished"] == "2026-05-02"
    assert data["url"] == "https://cekfakta.example/verdicts/7"
    assert "Kupang" in data["claimReviewed"]
