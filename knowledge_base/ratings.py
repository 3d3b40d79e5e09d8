"""Fact-checkers' rating labels ("[SALAH]", "Hoaks", "partly-true") mapped onto the fixed scale."""

from __future__ import annotations

import re

from knowledge_base.models import Rating

# Fact-checkers' labels (turnbackhoax.id/Mafindo, Tempo, Kompas, AFP, English) on the fixed scale.
RATING_LABELS: dict[str, Rating] = {
    "HOAKS": Rating.HOAKS,
    "HOAX": Rating.HOAKS,
    "DISINFORMASI": Rating.HOAKS,
    "FITNAH": Rating.HOAKS,
    "FABRICATED": Rating.HOAKS,
    "KONTEN PALSU": Rating.HOAKS,
    "SALAH": Rating.SALAH,
    "KELIRU": Rating.SALAH,
    "MISINFORMASI": Rating.SALAH,
    "FALSE": Rating.SALAH,
    "TIDAK BENAR": Rating.SALAH,
    "MENYESATKAN": Rating.MENYESATKAN,
    "MISLEADING": Rating.MENYESATKAN,
    "KONTEN MENYESATKAN": Rating.MENYESATKAN,
    "KONTEKS SALAH": Rating.MENYESATKAN,
    "KURANG KONTEKS": Rating.MENYESATKAN,
    "MISSING CONTEXT": Rating.MENYESATKAN,
    "KONTEN YANG DIMANIPULASI": Rating.MENYESATKAN,
    "SEBAGIAN BENAR": Rating.SEBAGIAN_BENAR,
    "SEBAGIAN SALAH": Rating.SEBAGIAN_BENAR,
    "PARTLY TRUE": Rating.SEBAGIAN_BENAR,
    "PARTLY FALSE": Rating.SEBAGIAN_BENAR,
    "BENAR": Rating.BENAR,
    "FAKTA": Rating.BENAR,
    "TRUE": Rating.BENAR,
    "TIDAK TERBUKTI": Rating.TIDAK_TERBUKTI,
    "BELUM TERBUKTI": Rating.TIDAK_TERBUKTI,
    "UNPROVEN": Rating.TIDAK_TERBUKTI,
    "PENIPUAN": Rating.PENIPUAN,
    "SCAM": Rating.PENIPUAN,
    "FRAUD": Rating.PENIPUAN,
    "SATIRE": Rating.SATIRE,
    "SATIRA": Rating.SATIRE,
    "PARODI": Rating.SATIRE,
    "PARODY": Rating.SATIRE,
    "KOMEDI": Rating.SATIRE,
}


def parse_rating(label: str) -> Rating:
    """A fact-checker's label ("[SALAH]", "Hoaks", "partly-true") on the fixed scale, else ValueError."""
    key = " ".join(re.sub(r"[\[\]()_\-:]", " ", label or "").upper().split())
    if key in RATING_LABELS:
        return RATING_LABELS[key]
    raise ValueError(f"unknown rating {label.strip()!r}" if label and label.strip() else "missing rating")
