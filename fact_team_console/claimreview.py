"""The fixed rating scale mapped onto schema.org ClaimReview, and the JSON-LD of a published verdict.

Numbers run from 1 (false) to 5 (true) as ClaimReview asks; `alternateName` carries the team's own
Indonesian label, which is what search engines show, and `english` helps foreign readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from knowledge_base.models import Rating, Verdict

BEST, WORST = 5, 1
PUBLISHER = {"@type": "Organization", "name": "Tim Cek Fakta Kota Kupang"}


@dataclass(frozen=True)
class RatingInfo:
    value: int
    english: str
    tone: str  # CSS class: bad | mixed | good | neutral


SCALE: dict[Rating, RatingInfo] = {
    Rating.HOAKS: RatingInfo(1, "Hoax", "bad"),
    Rating.SALAH: RatingInfo(1, "False", "bad"),
    Rating.PENIPUAN: RatingInfo(1, "Scam", "bad"),
    Rating.MENYESATKAN: RatingInfo(2, "Misleading", "mixed"),
    Rating.SATIRE: RatingInfo(2, "Satire", "neutral"),
    Rating.TIDAK_TERBUKTI: RatingInfo(3, "Unproven", "neutral"),
    Rating.SEBAGIAN_BENAR: RatingInfo(4, "Partly true", "mixed"),
    Rating.BENAR: RatingInfo(5, "True", "good"),
}


def rating_info(rating: str) -> RatingInfo:
    """The scale entry; ratings imported from elsewhere (e.g. PARODI) read as unproven-neutral."""
    try:
        return SCALE[Rating(rating)]
    except ValueError:
        return RatingInfo(3, rating.title(), "neutral")


def review_rating(rating: str) -> dict[str, Any]:
    info = rating_info(rating)
    return {
        "@type": "Rating",
        "ratingValue": info.value,
        "bestRating": BEST,
        "worstRating": WORST,
        "alternateName": rating,
    }


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def claim_review(verdict: Verdict, page_url: str) -> dict[str, Any]:
    """ClaimReview JSON-LD for one verdict; holds no citizen data (no messages, no pseudonyms)."""
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "url": verdict.url or page_url,
        "claimReviewed": verdict.claim,
        "datePublished": _date(verdict.published_at),
        "author": PUBLISHER,
        "reviewRating": review_rating(verdict.rating),
        "reviewBody": verdict.summary,
        "inLanguage": "id",
        "itemReviewed": {
            "@type": "Claim",
            "appearance": [{"@type": "CreativeWork", "url": u} for u in verdict.sources],
        },
    }
    if verdict.expires_at:
        data["expires"] = _date(verdict.expires_at)
    return {k: v for k, v in data.items() if v is not None}
