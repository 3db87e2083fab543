"""Listing text made inert before it enters an answer, so every client can render `Answer.text` as markdown.

Employers write listings; a listing can carry markdown images (which load a URL when rendered, e.g. a tracking pixel),
links, raw HTML, bare URLs (autolinked by markdown renderers), chat-template tokens and text that looks like one of our
`[id]` citations. `inert` turns all of them into plain words. Model output passes through `inert_generated`, which does
the same but keeps the `[id]` citations the engine has already checked against what was retrieved.
"""

from __future__ import annotations

import re

_TARGET = r"\((?:[^()\n]|\([^()\n]*\)){0,2000}\)"  # a link target, one level of parentheses inside
_IMAGE = re.compile(r"!\[([^\]\n]{0,300})\]\s*" + _TARGET)
_LINK = re.compile(r"\[([^\]\n]{0,300})\]\s*" + _TARGET)
_REF_LINK = re.compile(r"^\s*\[[^\]\n]{1,100}\]:\s*\S+.*$", re.M)  # [label]: http://… reference definitions
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto|javascript|data):[^>\s]{0,2000})>", re.I)
_URL = re.compile(r"\b(?:(?:https?|ftp|javascript|data|file):/*|www\.)[^\s<>()\[\]\"']{1,2000}", re.I)
_EMAIL = re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+\b")
_TAG = re.compile(r"</?[A-Za-z!?/][^>\n]{0,2000}>")
_CHAT_TOKEN = re.compile(r"<\|[^|>\n]{0,60}\|>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CITATION = re.compile(r"\[([\w.:#/-]+(?:,\s*[\w.:#/-]+)*)\]")


def inert(text: str) -> str:
    """Listing-derived text with nothing a markdown or HTML renderer would act on, and no brackets that look like citations."""
    text = _CONTROL.sub("", _CHAT_TOKEN.sub(" ", text))
    text = _IMAGE.sub(lambda m: f"(image: {m.group(1)})" if m.group(1).strip() else "(image removed)", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub("", text)
    text = _AUTOLINK.sub("(link removed)", text)
    text = _TAG.sub(" ", text)
    text = _URL.sub("(link removed)", text)
    text = _EMAIL.sub("(email removed)", text)
    text = text.replace("[", "(").replace("]", ")").replace("<", "‹").replace(">", "›")
    return re.sub(r"[ \t]{2,}", " ", text)


def inert_generated(text: str, cited: set[str]) -> str:
    """Model output made inert, keeping the `[id]` citations of retrieved listings (`cited`)."""
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        ids = [i.strip() for i in match.group(1).split(",")]
        if all(i in cited for i in ids):
            kept.append(match.group(0))
            return f"\x00{len(kept) - 1}\x00"
        return match.group(0)

    held = _CITATION.sub(hold, text)
    held = inert(held.replace("\x00", "\ue000")).replace("\ue000", "\x00")
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], held)
