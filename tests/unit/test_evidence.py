"""The evidence quoted for a listing: its best-matching sentences, each once, in the listing's own order."""

from __future__ import annotations

from rag_app.compose import EvidencePicker
from rag_app.records import SourceListing


def _listing(lid: str, chunk: str) -> SourceListing:
    return SourceListing(id=lid, title="Warehouse Associate", rank=1, score=1.0, chunk=chunk)


def test_a_posting_that_repeats_a_sentence_is_quoted_once() -> None:
    text = ("Pick and pack orders on the night shift. Forklift experience is a plus for this warehouse role. "
            "Pick and pack orders on the night shift. Our cafeteria serves hot food at every break.")
    picked = EvidencePicker(per_listing=2)("night shift forklift warehouse", [_listing("w-1", text)])["w-1"]
    assert picked == ["Pick and pack orders on the night shift.", "Forklift experience is a plus for this warehouse role."]


def test_each_listing_gets_its_own_best_sentences() -> None:
    a = _listing("a", "You will drive a forklift in our cold-storage warehouse. We offer dental cover from day one.")
    b = _listing("b", "You will teach algebra to ninth graders. Night shift is never required in this school job.")
    picked = EvidencePicker(per_listing=1)("forklift driver warehouse", [a, b])
    assert picked["a"] == ["You will drive a forklift in our cold-storage warehouse."] and len(picked["b"]) == 1
