"""The fixed rating scale mapped onto schema.org ClaimReview, and the JSON-LD of a published verdict.

Numbers run from 1 (false) to 5 (true) as ClaimReview asks; `alternateName` carries the team's own
Indonesian label, which is what search engines show, and `english` helps foreign readers. A verdict
imported from another fact-checker (turnbackhoax.id, …) is that fact-checker's review: it is the
`author` and its article is the review's `url`, never the city.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import Rating, Verdict

BEST, WORST = 5, 1


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


# --------------------------------------------------------------------------- the JSON-LD shape


class _Node(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    def json_ld(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Organization(_Node):
    type_: str = Field("Organization", alias="@type")
    name: str
    url: str | None = None


class ReviewRating(_Node):
    type_: str = Field("Rating", alias="@type")
    rating_value: int = Field(alias="ratingValue")
    best_rating: int = Field(BEST, alias="bestRating")
    worst_rating: int = Field(WORST, alias="worstRating")
    alternate_name: str = Field(alias="alternateName")


class Appearance(_Node):
    type_: str = Field("CreativeWork", alias="@type")
    url: str


class ClaimItem(_Node):
    type_: str = Field("Claim", alias="@type")
    appearance: list[Appearance] | None = None


class ClaimReview(_Node):
    context: str = Field("https://schema.org", alias="@context")
    type_: str = Field("ClaimReview", alias="@type")
    url: str
    claim_reviewed: str = Field(alias="claimReviewed")
    date_published: str | None = Field(None, alias="datePublished")
    date_modified: str | None = Field(None, alias="dateModified")
    expires: str | None = None
    author: Organization
    review_rating: ReviewRating = Field(alias="reviewRating")
    review_body: str | None = Field(None, alias="reviewBody")
    in_language: str = Field("id", alias="inLanguage")
    item_reviewed: ClaimItem = Field(alias="itemReviewed")
    image: str | None = None


def review_rating(rating: str) -> dict[str, Any]:
    return ReviewRating(rating_value=rating_info(rating).value, alternate_name=rating).json_ld()


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def _home(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme in ("http", "https") and parts.netloc else None


def is_imported(verdict: Verdict) -> bool:
    """Another fact-checker's verdict (imported or read from its feed), not the city team's."""
    return verdict.origin != "console" and bool(verdict.source_name or verdict.url)


def checker(verdict: Verdict) -> Organization:
    """Who reviewed the claim: the imported fact-checker, else the city's team."""
    if is_imported(verdict):
        name = verdict.source_name or urlsplit(verdict.url or "").netloc
        return Organization(name=name, url=_home(verdict.url))
    settings = get_digest_settings()
    return Organization(name=settings.team_name, url=settings.public_base_url + "/cek-fakta")


# Messaging links carry phone numbers or private groups; long digit runs may be a number too.
_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
_PRIVATE_HOSTS = frozenset(
    {"wa.me", "api.whatsapp.com", "chat.whatsapp.com", "t.me", "telegram.me", "telegram.dog"}
)
_DIGITS = re.compile(r"\d{8,}")


def appearances(text: str | None, limit: int = 5) -> list[str]:
    """Where a claim was seen: web links in the circulated message, minus anything that may be personal."""
    found: list[str] = []
    for match in _URL.findall(text or ""):
        url = match.rstrip(".,;:!?")
        host = urlsplit(url).netloc.lower().removeprefix("www.")
        if host in _PRIVATE_HOSTS or _DIGITS.search(url) or len(url) > 500 or url in found:
            continue
        found.append(url)
    return found[:limit]


def claim_review(
    verdict: Verdict, page_url: str, *, seen_at: list[str] | None = None, image_url: str | None = None
) -> dict[str, Any]:
    """ClaimReview JSON-LD for one verdict; holds no citizen data (no messages, no pseudonyms)."""
    imported = is_imported(verdict)
    review = ClaimReview(
        url=(verdict.url if imported and verdict.url else page_url),
        claim_reviewed=verdict.claim,
        date_published=_date(verdict.published_at),
        date_modified=_date(verdict.updated_at) if verdict.version > 1 else None,
        expires=_date(verdict.expires_at),
        author=checker(verdict),
        review_rating=ReviewRating(
            rating_value=rating_info(verdict.rating).value, alternate_name=verdict.rating
        ),
        review_body=verdict.summary or None,
        item_reviewed=ClaimItem(appearance=[Appearance(url=u) for u in seen_at] if seen_at else None),
        image=image_url,
    )
    return review.json_ld()
