"""Who may take a step: role checks, and four-eyes review of every verdict version citizens receive.

A verdict version is approved by someone who wrote none of it. Everyone who saves or submits a
version's text is one of its writers (not only the last to save), and a correction's writers include
the writers of the version it corrects, whose words it carries over. There is no override: an admin
may review like a reviewer, under the same rule.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from fact_team_console.errors import WorkflowError
from knowledge_base.models import Role, StaffUser, Verdict, VerdictContributor, VerdictCorrection

FOUR_EYES = "Vonis harus disetujui peninjau lain yang tidak ikut menulisnya."


def require_role(user: StaffUser, *roles: Role) -> None:
    """Admins and the given roles may take the step."""
    if user.role != Role.admin and user.role not in roles:
        raise WorkflowError("Peran Anda tidak mengizinkan langkah ini.")


def writers(session: Session, verdict_id: int, version: int) -> set[int]:
    """The staff ids who wrote (some of) this version of the verdict."""
    query = select(VerdictContributor.staff_id).where(
        VerdictContributor.verdict_id == verdict_id, VerdictContributor.version == version
    )
    return set(session.exec(query))


def add_writers(session: Session, verdict_id: int, version: int, staff_ids: set[int]) -> None:
    """Record writers of a version once each (a concurrent save of the same writer is no error)."""
    for staff_id in sorted(staff_ids - writers(session, verdict_id, version)):
        try:
            with session.begin_nested():
                session.add(VerdictContributor(verdict_id=verdict_id, version=version, staff_id=staff_id))
        except IntegrityError:
            continue


def check_approver(
    session: Session, text: Verdict | VerdictCorrection, user: StaffUser, seen: str | None
) -> None:
    """A reviewer (or admin) who wrote none of this version may approve it, as they saw it.

    `seen` is the text's `updated_at` when the approval form was shown: a text sent back and changed
    since is not approved unseen.
    """
    require_role(user, Role.reviewer)
    verdict_id = text.id if isinstance(text, Verdict) else text.verdict_id
    if user.id in writers(session, verdict_id or 0, text.version):
        raise WorkflowError(FOUR_EYES)
    if seen is not None and seen != text.updated_at.isoformat():
        raise WorkflowError("Teks ini berubah sejak Anda membukanya; periksa lagi sebelum menyetujui.")
