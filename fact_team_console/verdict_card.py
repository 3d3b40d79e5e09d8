"""The shareable verdict card: a 1080×1080 PNG with the claim, a rating stamp and the city's short link.

It is what citizens forward back into their WhatsApp groups, and the verdict page's `og:image`.
Drawn with Pillow using `PUBLIC_CARD_FONT` (DejaVu Sans Bold on Debian) or, when that file is
missing, Pillow's own bundled font, so a card never fails for want of a font.
"""

from __future__ import annotations

import io
import unicodedata
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 1080
MARGIN = 72
TONES = {  # stamp colour per rating tone (the console's palette)
    "bad": (179, 38, 30),
    "mixed": (178, 106, 0),
    "good": (30, 123, 52),
    "neutral": (91, 95, 151),
}
INK = (29, 39, 51)
MUTED = (102, 115, 127)
BAND = (14, 58, 74)
PAPER = (250, 251, 252)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=32)
def _font(path: str, size: int) -> Font:
    if Path(path).is_file():
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _printable(text: str) -> str:
    """Drop what the font cannot draw (emoji, other symbols and control characters) rather than tofu."""
    kept = (ch for ch in " ".join(text.split()) if ord(ch) < 0x2500 and unicodedata.category(ch)[0] != "C")
    return "".join(kept).strip()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while draw.textlength(word, font=font) > width:  # a URL or a very long word: break it
            cut = len(word)
            while cut > 1 and draw.textlength(word[:cut], font=font) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


def _fit_claim(
    draw: ImageDraw.ImageDraw, claim: str, font_path: str, width: int, height: int
) -> tuple[Font, list[str]]:
    """The largest size at which the claim fits the box; at the smallest, the tail gets an ellipsis."""
    for size in (68, 60, 52, 46, 40):
        font = _font(font_path, size)
        lines = _wrap(draw, f"“{claim}”", font, width)
        if len(lines) * int(size * 1.3) <= height:
            return font, lines
    font = _font(font_path, 40)
    lines = _wrap(draw, f"“{claim}”", font, width)
    keep = max(height // 52, 1)
    if len(lines) > keep:
        lines = [*lines[: keep - 1], lines[keep - 1].rstrip(" ,.;:") + "…”"]
    return font, lines


def _stamp(label: str, tone: str, font_path: str) -> Image.Image:
    """The rating as a rubber stamp: bold label in a double frame, tilted."""
    font = _font(font_path, 96 if len(label) <= 8 else 72)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), label, font=font)
    w, h = int(right - left) + 80, int(bottom - top) + 56
    stamp = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(stamp)
    colour = (*TONES.get(tone, TONES["neutral"]), 255)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=18, outline=colour, width=10)
    draw.rounded_rectangle((16, 16, w - 17, h - 17), radius=10, outline=colour, width=4)
    draw.text((40 - left, 28 - top), label, font=font, fill=colour)
    return stamp.rotate(8, expand=True, resample=Image.Resampling.BICUBIC)


@lru_cache(maxsize=256)
def render_card(
    claim: str,
    rating: str,
    tone: str,
    link: str,
    *,
    site: str,
    checked_by: str,
    expired: bool = False,
    font_path: str,
) -> bytes:
    """PNG bytes of one card; cached per content (a new verdict version is a new key)."""
    image = Image.new("RGB", (SIZE, SIZE), PAPER)
    draw = ImageDraw.Draw(image)
    width = SIZE - 2 * MARGIN

    draw.rectangle((0, 0, SIZE, 132), fill=BAND)
    draw.text(
        (MARGIN, 40), _printable(site).upper() or "CEK FAKTA", font=_font(font_path, 52), fill=(255, 255, 255)
    )

    stamp = _stamp(_printable(rating) or "?", tone, font_path)
    image.paste(stamp, (SIZE - MARGIN - stamp.width, 170), stamp)

    label_y = 170 + stamp.height + 24
    draw.text((MARGIN, label_y), "Kabar yang beredar:", font=_font(font_path, 34), fill=MUTED)
    top, bottom = label_y + 60, SIZE - 230
    font, lines = _fit_claim(draw, _printable(claim) or "-", font_path, width, bottom - top)
    size = font.size if isinstance(font, ImageFont.FreeTypeFont) else 40
    for n, line in enumerate(lines):
        draw.text((MARGIN, top + n * int(size * 1.3)), line, font=font, fill=INK)

    if expired:
        draw.rectangle((0, bottom + 10, SIZE, bottom + 70), fill=(255, 241, 214))
        draw.text((MARGIN, bottom + 22), "Sudah tidak berlaku", font=_font(font_path, 36), fill=(120, 72, 0))
    draw.line((MARGIN, SIZE - 150, SIZE - MARGIN, SIZE - 150), fill=(221, 227, 232), width=3)
    draw.text((MARGIN, SIZE - 128), _printable(link), font=_font(font_path, 48), fill=BAND)
    draw.text(
        (MARGIN, SIZE - 64), f"Diperiksa {_printable(checked_by)}", font=_font(font_path, 30), fill=MUTED
    )

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
