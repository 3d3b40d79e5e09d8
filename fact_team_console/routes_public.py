"""The public web: verdict list and pages with ClaimReview, cards, digest archive, feeds. No login.

Nothing personal appears here: no pseudonym, chat id, phone number or staff name (the team is
"Tim Cek Fakta"). Only published verdicts and published digests are reachable. The console's old
public verdict links (`/verdicts/{id}`, `/api/verdicts/{id}/claimreview`) redirect here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session, col, func, select
from starlette.responses import Response

from fact_team_console import public_feeds
from fact_team_console.claimreview import appearances, checker, claim_review, is_imported, rating_info
from fact_team_console.public_render import page, public_headers
from fact_team_console.security import DbSession, RowId
from fact_team_console.verdict_card import render_card
from knowledge_base import digests
from knowledge_base.digest_render import one_line, short_link, verdict_url
from knowledge_base.digest_settings import get_digest_settings
from knowledge_base.models import Claim, Digest, DigestStatus, Rating, Verdict, VerdictStatus, utcnow

router = APIRouter(include_in_schema=False)
RATING_VALUES = [r.value for r in Rating]


class Missing(Exception):
    """A public page that does not exist (404) or no longer exists (410)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _published(session: Session, verdict_id: int) -> Verdict:
    """A published (possibly expired) verdict; withdrawn ones are gone (410), others unknown (404)."""
    verdict = session.get(Verdict, verdict_id)
    if verdict is not None and verdict.status == VerdictStatus.withdrawn:
        raise Missing(410, "Hasil cek fakta ini sudah ditarik oleh tim.")
    if verdict is None or verdict.status != VerdictStatus.published:
        raise Missing(404, "Hasil cek fakta ini tidak ditemukan.")
    return verdict


async def missing_page(request: Request, exc: Exception) -> Response:
    """An Indonesian error page in the public layout (installed by `fact_team_console.web`)."""
    status, message = (exc.status, exc.message) if isinstance(exc, Missing) else (404, "Tidak ditemukan.")
    return page(request, "public/error.html", {"message": message}, status_code=status)


def _review(session: Session, verdict: Verdict) -> dict[str, Any]:
    settings = get_digest_settings()
    claim = session.get(Claim, verdict.claim_id) if verdict.claim_id else None
    url = verdict_url(verdict.id or 0, settings)
    return claim_review(
        verdict,
        url,
        seen_at=appearances(claim.text if claim else None),
        image_url=f"{url}/kartu.png",
    )


# --------------------------------------------------------------------------- verdicts


@router.get("/cek-fakta")
def verdict_list(
    request: Request,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
    rating: Annotated[str, Query(max_length=40)] = "",
    page_no: Annotated[int, Query(alias="halaman", ge=1, le=10_000)] = 1,
) -> Response:
    settings = get_digest_settings()
    chosen = rating if rating in RATING_VALUES else ""
    size = settings.page_size
    rows, total = digests.find_verdicts(
        q, session=session, rating=chosen or None, limit=size, offset=(page_no - 1) * size
    )
    items = [
        {"v": v, "info": rating_info(v.rating), "line": one_line(v.summary, 200), "by": checker(v).name}
        for v in rows
    ]
    return page(
        request,
        "public/verdicts.html",
        {
            "items": items,
            "total": total,
            "q": q,
            "rating": chosen,
            "ratings": RATING_VALUES,
            "page_no": page_no,
            "pages": max((total + size - 1) // size, 1),
        },
    )


@router.get("/cek-fakta/feed.xml")
def verdict_feed(request: Request, session: DbSession) -> Response:
    settings = get_digest_settings()
    rows, _ = digests.find_verdicts(session=session, limit=settings.feed_size)
    body = public_feeds.verdict_feed(rows, settings)
    return public_headers(request, Response(body, media_type=public_feeds.FEED_TYPE))


@router.get("/cek-fakta/{verdict_id}")
def verdict_page(request: Request, verdict_id: RowId, session: DbSession) -> Response:
    """A verdict as the public reads it, with its ClaimReview JSON-LD and Open Graph tags."""
    settings = get_digest_settings()
    verdict = _published(session, verdict_id)
    url = verdict_url(verdict_id, settings)
    context = {
        "v": verdict,
        "info": rating_info(verdict.rating),
        "by": checker(verdict).name,
        "imported": is_imported(verdict),
        "expired": not verdict.is_servable(utcnow()),
        "claimreview": _review(session, verdict),
        "url": url,
        "card": f"{url}/kartu.png",
        "short": short_link(verdict_id, settings),
        "share": f"Cek fakta: {verdict.rating} – {one_line(verdict.claim, 120)} {url}",
    }
    return page(request, "public/verdict.html", context)


@router.get("/cek-fakta/{verdict_id}/kartu.png")
def verdict_card(request: Request, verdict_id: RowId, session: DbSession) -> Response:
    settings = get_digest_settings()
    verdict = _published(session, verdict_id)
    png = render_card(
        verdict.claim,
        verdict.rating,
        rating_info(verdict.rating).tone,
        short_link(verdict_id, settings),
        site=settings.site_name,
        checked_by=checker(verdict).name,
        expired=not verdict.is_servable(utcnow()),
        font_path=str(settings.card_font),
    )
    return public_headers(request, Response(png, media_type="image/png"), max_age=3600)


@router.get("/cek-fakta/{verdict_id}/claimreview.json")
def verdict_claimreview(request: Request, verdict_id: RowId, session: DbSession) -> Response:
    data = _review(session, _published(session, verdict_id))
    return public_headers(request, JSONResponse(data, media_type="application/ld+json"))


@router.get("/c/{verdict_id}")
def short(verdict_id: RowId) -> RedirectResponse:
    """The short link printed on cards."""
    return RedirectResponse(f"/cek-fakta/{verdict_id}", status_code=301)


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    """Browsers ask for it on every page without an icon link (an image opened on its own, too)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/verdicts/{verdict_id}")
def old_verdict_link(verdict_id: RowId) -> RedirectResponse:
    return RedirectResponse(f"/cek-fakta/{verdict_id}", status_code=301)


@router.get("/api/verdicts/{verdict_id}/claimreview")
def old_claimreview_link(verdict_id: RowId) -> RedirectResponse:
    return RedirectResponse(f"/cek-fakta/{verdict_id}/claimreview.json", status_code=308)


# --------------------------------------------------------------------------- digests


@router.get("/kabar")
def digest_archive(
    request: Request,
    session: DbSession,
    page_no: Annotated[int, Query(alias="halaman", ge=1, le=10_000)] = 1,
) -> Response:
    size = get_digest_settings().page_size
    query = select(Digest).where(Digest.status == DigestStatus.published)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Digest.published_at).desc(), col(Digest.id).desc())
        .offset((page_no - 1) * size)
        .limit(size)
    ).all()
    counts = digests.item_counts([d.id or 0 for d in rows], session=session)
    views = [digests.view(d, session=session) for d in rows]
    items = [{"view": v, "count": counts.get(v.id, 0)} for v in views]
    return page(
        request,
        "public/digests.html",
        {"items": items, "page_no": page_no, "pages": max((int(total) + size - 1) // size, 1)},
    )


@router.get("/kabar/feed.xml")
def digest_feed(request: Request, session: DbSession) -> Response:
    settings = get_digest_settings()
    rows = session.exec(
        select(Digest)
        .where(Digest.status == DigestStatus.published)
        .order_by(col(Digest.published_at).desc(), col(Digest.id).desc())
        .limit(settings.feed_size)
    ).all()
    body = public_feeds.digest_feed([digests.view(d, session=session) for d in rows], settings)
    return public_headers(request, Response(body, media_type=public_feeds.FEED_TYPE))


@router.get("/kabar/{digest_id}")
def digest_page(request: Request, digest_id: RowId, session: DbSession) -> Response:
    digest = session.get(Digest, digest_id)
    if digest is None or digest.status != DigestStatus.published:
        raise Missing(404, "Kabar ini tidak ditemukan.")
    return page(request, "public/digest.html", {"d": digests.view(digest, session=session)})
