"""Counts as sentences say them: "1 file", "2,000 files", never "1 files" or "file(s)"."""

from __future__ import annotations


def counted(count: float, noun: str, plural: str | None = None, *, more: bool = False) -> str:
    """``count`` with thousands separators and ``noun`` in the number it takes (``plural`` when not noun + "s");
    ``more``: a listing cut short, said "1,000+ files"."""
    word = noun if count == 1 and not more else (plural or f"{noun}s")
    return f"{count:,}{'+' if more else ''} {word}"


def sentence(text: str) -> str:
    """`text` ended as a sentence, for a message followed by its action on one line ("… does not exist. Check …")."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?:)" else f"{text}."
