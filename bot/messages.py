"""Every citizen-facing text of the bot, in short friendly Indonesian, in one place for review.

Texts are plain (no Markdown/HTML) so that whatever a citizen or a source wrote is shown verbatim,
never interpreted, on every channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from knowledge_base.dates import format_date

GREETING = (
    "Halo! Saya Kabas Hoaks, asisten warga Kota Kupang.\n"
    "Kirim pertanyaan tentang kota, atau teruskan pesan berantai yang mau dicek kebenarannya."
)
MENU = (
    "Yang bisa saya bantu:\n"
    "/cek - cek kabar atau pesan berantai\n"
    "/tanya - tanya info layanan kota\n"
    "/langganan - terima ringkasan cek fakta\n"
    "/berhenti - berhenti langganan\n"
    "/hapusdata - hapus data Anda"
)
PROMPT_CLAIM = "Silakan kirim atau teruskan kabar yang mau dicek."
CLAIM_TOO_SHORT = "Kabarnya terlalu singkat untuk dicek. Kirim kalimat lengkap atau teruskan pesannya ya."
PROMPT_QUESTION = "Silakan tulis pertanyaan Anda tentang Kota Kupang."
THANKS = "Sama-sama! Kirim saja kalau ada kabar lain yang mau dicek."
GOODBYE = "Terima kasih, sampai jumpa! Tetap waspada dengan hoaks ya."
OUT_OF_SCOPE = "Maaf, itu di luar yang bisa saya bantu. Saya bisa cek kabar/hoaks dan menjawab info kota."
NOT_UNDERSTOOD = "Maaf, saya belum paham. Mau cek kabar atau bertanya info kota?"
NO_INFO = "Maaf, belum ada informasi tentang itu di sumber resmi yang kami pantau."
TICKET = "Tim kami sedang memeriksa kabar ini; kami akan kabari Anda begitu hasilnya terbit."
TICKET_JOINED = "Kabar ini juga sedang ditanyakan {others} warga lain. " + TICKET
SUGGEST_INTRO = "Kabar ini mirip dengan yang sudah kami cek. Apakah salah satunya yang Anda maksud?"
SUGGEST_NONE = "Bukan, periksa kabar saya"
SUBSCRIBED = "Anda berlangganan ringkasan cek fakta. Ketik /berhenti untuk berhenti."
UNSUBSCRIBED = "Langganan dihentikan. Ketik /langganan kalau mau berlangganan lagi."
CONFIRM_DELETE = (
    "Yakin mau menghapus data Anda? Pesan dan alamat chat Anda akan dihapus, "
    "dan kabar yang sedang diperiksa tidak akan kami kirimkan lagi."
)
DELETE_YES = "Ya, hapus"
DELETE_NO = "Batal"
CANCELLED = "Baik, dibatalkan."
STALE_BUTTON = "Tombol ini sudah kedaluwarsa. Silakan kirim ulang pesan Anda."
VERDICT_NOT_CURRENT = (
    "Hasil cek fakta itu sudah tidak berlaku lagi, jadi tidak kami kirimkan. "
    "Kirim ulang kabarnya agar kami periksa dengan informasi terbaru."
)
FEEDBACK_THANKS = "Terima kasih atas penilaian Anda!"
FEEDBACK_YES = "👍 Membantu"
FEEDBACK_NO = "👎 Tidak membantu"
CHOOSE = "Pilih salah satu:"
MENU_CHECK = "Cek kabar"
MENU_ASK = "Tanya info"
MENU_SUBSCRIBE = "Langganan"
EMPTY_TEXT = "Pesan Anda kosong. Silakan tulis kabar atau pertanyaan Anda."
TOO_LONG = "Pesan Anda terlalu panjang (maks. {limit} huruf). Kirim bagian terpentingnya saja ya."
RATE_LIMITED = "Pelan-pelan ya 🙏 Terlalu banyak pesan dalam waktu singkat. Coba lagi sebentar lagi."
ERROR = "Maaf, ada gangguan di sistem kami. Silakan coba lagi sebentar lagi."
MEDIA = {
    "photo": "Saya belum bisa membaca gambar. Tambahkan keterangan, atau ketik isi kabarnya.",
    "voice": "Saya belum bisa mendengar pesan suara. Silakan ketik pesan Anda.",
    "audio": "Saya belum bisa mendengar audio. Silakan ketik pesan Anda.",
    "video": "Saya belum bisa menonton video. Ketik isi kabarnya ya.",
    "sticker": "Stikernya lucu! Tapi saya hanya bisa membaca teks.",
    "document": "Saya belum bisa membuka dokumen. Salin isi kabarnya ke pesan ya.",
    "location": "Terima kasih, tapi saya belum bisa memakai lokasi. Silakan ketik pertanyaan Anda.",
}
MEDIA_OTHER = "Jenis pesan ini belum bisa saya baca. Silakan kirim dalam bentuk teks."


def source_line(outlet: str | None, published_at: datetime | None, url: str | None) -> str:
    parts = [outlet or "Sumber", format_date(published_at)]
    return "- " + ", ".join(parts) + (f"\n  {url}" if url else "")


def answer(text: str, citations: Sequence[Any]) -> str:
    """The knowledge base's answer; sources are appended when its text does not already carry them."""
    missing = [c for c in citations[:3] if getattr(c, "url", None) and c.url not in text]
    if not missing:
        return text
    lines = [source_line(c.outlet, c.published_at, c.url) for c in missing]
    return text.rstrip() + "\n\nSumber:\n" + "\n".join(lines)


def verdict(claim: str, rating: str, summary: str, url: str | None, published_at: datetime | None) -> str:
    """A published verdict: rating first, one paragraph, source and date."""
    body = f"Hasil cek fakta: {rating}\nKabar: {claim.strip()}"
    if summary.strip():
        body += f"\n\n{summary.strip()}"
    return body + f"\n\nDiperiksa: {format_date(published_at)}" + (f"\n{url}" if url else "")


def suggestion_label(index: int, claim: str, rating: str) -> str:
    short = claim.strip().replace("\n", " ")
    short = short if len(short) <= 80 else short[:77] + "..."
    return f"{index}. [{rating}] {short}"


def ticket(ask_count: int) -> str:
    return TICKET_JOINED.format(others=ask_count - 1) if ask_count > 1 else TICKET


def notification(
    kind: str, claim: str, rating: str, summary: str, url: str | None, at: datetime | None
) -> str:
    """The promised follow-up: a verdict, a corrected verdict, or a rejected claim."""
    if kind == "correction":
        return "Koreksi hasil cek fakta yang pernah kami kirim:\n\n" + verdict(
            claim, rating, summary, url, at
        )
    return "Kabar yang Anda tanyakan sudah selesai diperiksa.\n\n" + verdict(claim, rating, summary, url, at)


def rejection(claim: str, reason: str) -> str:
    return (
        f'Kabar yang Anda tanyakan ("{claim.strip()[:200]}") tidak bisa kami periksa lebih lanjut.\n'
        f"Alasan: {reason.strip() or 'tidak disebutkan'}.\nTerima kasih sudah bertanya!"
    )


def deleted(messages: int, reports: int, notifications: int) -> str:
    """What `/hapusdata` removed, so the citizen can see it was done."""
    return (
        "Data Anda sudah dihapus:\n"
        f"- {messages} pesan\n"
        f"- {reports} laporan kabar (hitungan anonim tetap ada)\n"
        f"- {notifications} pemberitahuan yang belum terkirim\n"
        "- alamat chat Anda\n"
        "Anda tetap bisa memakai bot ini kapan saja."
    )


def template_params(text: str) -> list[str]:
    """WhatsApp template body parameters: one short paragraph (templates cap parameter length)."""
    return [text.replace("\n", " ")[:1000]]
