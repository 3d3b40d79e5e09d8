"""Tickets for the fact team: one open ticket per claim, however many citizens forward it.

A citizen's claim joins an open ticket when it is an exact or near-exact forward of the ticket's text,
or when it says the same thing in other words (high cosine, most terms shared, no name or number in
conflict); otherwise it opens a new ticket. Joining is deliberately cautious: two tickets for one claim
cost a click to merge, one ticket for two claims would send citizens the wrong verdict.
A ticket that cannot be checked is closed with a reason every asker receives (`reject_claim`).
"""

from __future__ import annotations

import logging

import numpy as np
from sqlmodel import Session, col, select

from knowledge_base import embeddings, near_duplicate
from knowledge_base.matching import VerdictCandidate, match_claim
from knowledge_base.models import (
    OPEN_CLAIM_STATUSES,
    CitizenReport,
    Claim,
    ClaimNote,
    ClaimStatus,
    Verdict,
    utcnow,
)
from knowledge_base.normalize import normalize, tokens
from knowledge_base.search import PassageHit, search_passages
from knowledge_base.verdicts import _askers, _enqueue

log = logging.getLogger(__name__)

# On the dev CSV (300 circulated messages and their verdicts' claims, e5 query embeddings), cosine
# ≥ 0.90 with ≥ 70% of the shorter text's terms shared joined no two different claims, and about a
# quarter of the same-claim pairs; dense cosine alone reached 0.97 between unrelated messages.
JOIN_MIN_COSINE = 0.90
JOIN_MIN_TERM_OVERLAP = 0.7


def _same_claim(text: str, other: str, cosine: float) -> bool:
    if cosine < JOIN_MIN_COSINE:
        return False
    a, b = set(tokens(text)), set(tokens(other))
    if not a or not b or len(a & b) / min(len(a), len(b)) < JOIN_MIN_TERM_OVERLAP:
        return False
    ka, kb = near_duplicate.key_tokens(text), near_duplicate.key_tokens(other)
    return ka <= kb or kb <= ka  # a name or number only one side has, each way, means two claims


def _open_claims(session: Session) -> list[Claim]:
    return list(
        session.exec(select(Claim).where(col(Claim.status).in_(OPEN_CLAIM_STATUSES)).order_by(col(Claim.id)))
    )


def _semantic_match(session: Session, text: str, vector: np.ndarray, claims: list[Claim]) -> Claim | None:
    """The open ticket saying the same thing in other words, embedding tickets that lack a vector."""
    lacking = [c for c in claims if not c.embedding]
    if lacking:
        for claim, v in zip(
            lacking, embeddings.embed_queries([normalize(c.text) for c in lacking]), strict=True
        ):
            claim.embedding = embeddings.to_blob(v)
            session.add(claim)
    best: tuple[float, Claim] | None = None
    for claim in claims:
        other = embeddings.from_blob(claim.embedding or b"")
        if other.shape != vector.shape:
            continue
        cosine = float(other @ vector)
        if _same_claim(text, claim.text, cosine) and (best is None or cosine > best[0]):
            best = (cosine, claim)
    return best[1] if best else None


def find_open_ticket(session: Session, text: str) -> tuple[Claim | None, np.ndarray | None]:
    """The open ticket this text belongs to (hashes first, then meaning), and the text's vector if made."""
    claims = _open_claims(session)
    by_id = {c.id: c for c in claims}
    duplicate = near_duplicate.find_duplicate(
        text, ((c.id or 0, c.text_hash, c.simhash, c.text) for c in claims)
    )
    if duplicate is not None:
        return by_id[duplicate], None
    vector = embeddings.embed_queries([normalize(text)])[0]
    return _semantic_match(session, text, vector, claims), vector


def report_claim(text: str, *, session: Session, citizen_id: int | None, message_id: int | None) -> Claim:
    """Record a citizen's ask: join the open ticket for this claim or open one; bumps `ask_count`."""
    text = (text or "").strip()
    if not near_duplicate.canonical(text):
        raise ValueError("a claim needs some text")
    claim, vector = find_open_ticket(session, text)
    now = utcnow()
    if claim is None:
        if vector is None:  # pragma: no cover - find_open_ticket embeds whenever no duplicate was found
            vector = embeddings.embed_queries([normalize(text)])[0]
        claim = Claim(
            text=text,
            text_hash=near_duplicate.text_hash(text),
            simhash=near_duplicate.simhash(text),
            embedding=embeddings.to_blob(vector),
            first_asked_at=now,
        )
        session.add(claim)
        session.flush()
        log.info("new ticket %s", claim.id)
    else:
        log.info("ask joined ticket %s", claim.id)
    claim.ask_count += 1
    claim.last_asked_at = now
    session.add(claim)
    session.add(
        CitizenReport(claim_id=claim.id or 0, citizen_id=citizen_id, message_id=message_id, text=text)
    )
    session.flush()
    return claim


def merge_claims(target_id: int, source_ids: list[int], *, session: Session) -> Claim:
    """Fold tickets into one: their asks, citizens, notes and draft verdicts follow the target."""
    sources = sorted(set(source_ids) - {target_id})
    if not sources:
        raise ValueError("nothing to merge: give other tickets than the target")
    target = session.get(Claim, target_id)
    if target is None:
        raise LookupError(f"claim {target_id} not found")
    if target.status == ClaimStatus.merged:
        raise ValueError(f"claim {target_id} was itself merged into {target.merged_into_id}")
    now = utcnow()
    for source_id in sources:
        source = session.get(Claim, source_id)
        if source is None:
            raise LookupError(f"claim {source_id} not found")
        for model in (CitizenReport, ClaimNote, Verdict):
            for row in session.exec(select(model).where(model.claim_id == source_id)).all():
                row.claim_id = target_id
                session.add(row)
        for earlier in session.exec(select(Claim).where(Claim.merged_into_id == source_id)).all():
            earlier.merged_into_id = target_id
            session.add(earlier)
        target.ask_count += source.ask_count
        target.first_asked_at = min(target.first_asked_at, source.first_asked_at)
        target.last_asked_at = max(target.last_asked_at, source.last_asked_at)
        source.status = ClaimStatus.merged
        source.merged_into_id = target_id
        source.closed_at = now
        session.add(source)
    session.add(target)
    session.flush()
    log.info("merged tickets %s into %s", sources, target_id)
    return target


def evidence_for(claim_id: int, *, session: Session) -> tuple[list[PassageHit], list[VerdictCandidate]]:
    """What the fact team starts from: passages from trusted feeds and verdicts that may already answer it."""
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise LookupError(f"claim {claim_id} not found")
    passages = search_passages(claim.text, k=5, session=session)
    return passages, match_claim(claim.text, session=session).candidates


def reject_claim(claim_id: int, reason: str, *, session: Session) -> int:
    """Close a ticket as not checkable and tell every asker why; returns notifications added."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValueError("a rejection needs a reason: citizens receive it")
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise LookupError(f"claim {claim_id} not found")
    claim.status = ClaimStatus.rejected
    claim.reject_reason = reason
    claim.closed_at = claim.closed_at or utcnow()
    session.add(claim)
    added = _enqueue(
        session, _askers(session, claim_id), f"rejection:{claim_id}", kind="rejection", claim_id=claim_id
    )
    session.flush()
    log.info("claim %s rejected, %d notifications", claim_id, added)
    return added
