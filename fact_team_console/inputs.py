"""Typed-in text made storable: control characters (NUL above all) are dropped, not rejected with a 500.

PostgreSQL refuses NUL in text, and no staff member means to type one; tabs and newlines stay.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str) -> str:
    return _CONTROL.sub("", text)
