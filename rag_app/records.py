"""Typed records passed between stages (ingest, finetune, eval, chat)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from rag_app.filters import derived_metadata

# Listing fields that make up the embedded header of every chunk, in display order.
HEADER_FIELDS = ("title", "company", "location", "salary", "work_type")
# Chunk metadata keys that ingestion writes and the store, retrievers and reports read.
LISTING_ID = "listing_id"
HEADER = "header"
CONTENT_HASH = "content_hash"
CHUNK_INDEX = "chunk_index"
N_CHUNKS = "n_chunks"
BOOKKEEPING_KEYS = (CONTENT_HASH, CHUNK_INDEX, N_CHUNKS)  # per chunk, not facts about the listing
DOCUMENT_CHARS = 4000  # description characters in a listing's document text (far past any encoder's window)


def header_line(fields: Any) -> str:
    """`Title | Company | Location | Pay | Work type` of anything with those attributes, skipping empty ones."""
    return " | ".join(str(v) for f in HEADER_FIELDS if (v := getattr(fields, f, None)))


def listing_id_of(node: Any) -> str:
    """The listing a chunk (a llama-index node, or a NodeWithScore) belongs to."""
    node = getattr(node, "node", node)
    return str(node.metadata.get(LISTING_ID, node.node_id))


class ListingFacts(BaseModel):
    """The facts every listing record shows: what its header line is made of."""

    id: str
    title: str
    company: str | None = None
    location: str | None = None
    salary: str | None = None
    work_type: str | None = None

    def header(self) -> str:
        """`Title | Company | Location | Pay | Work type`, skipping empty fields (the line every chunk is embedded with)."""
        return header_line(self)


class JobListing(ListingFacts):
    """One normalised job posting. Text fields are already cleaned (no HTML, entities unescaped)."""

    description: str
    experience_level: str | None = None
    skills: list[str] = Field(default_factory=list)
    url: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def document_text(self, max_chars: int = DOCUMENT_CHARS) -> str:
        """What a model sees for this listing in training and evaluation: the header, a blank line, the description."""
        return f"{self.header()}\n\n{self.description[:max_chars]}"

    def content_hash(self) -> str:
        """Hash of everything that is indexed; an edit to any of it changes the hash."""
        payload = self.model_dump(exclude={"id", "url", "extra"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def repost_key(self) -> str:
        """Same title + company + normalised description = a repost of the same job."""
        norm = " ".join("".join(c for c in self.description.lower() if c.isalnum() or c.isspace()).split())
        key = f"{self.title.strip().lower()}|{(self.company or '').strip().lower()}|{norm}"
        return hashlib.sha1(key.encode()).hexdigest()

    def chunk_metadata(self) -> dict[str, Any]:
        """Flat, Chroma-storable metadata carried by every chunk of this listing."""
        meta: dict[str, Any] = {LISTING_ID: self.id, "title": self.title}
        for f in ("company", "location", "salary", "work_type", "experience_level", "url"):
            if (v := getattr(self, f)) is not None:
                meta[f] = v
        if self.skills:
            meta["skills"] = ", ".join(self.skills)
        return meta | derived_metadata(self.work_type, self.location, self.salary, self.experience_level, self.title)


class Reject(BaseModel):
    """A source row that could not become a listing, and why."""

    source: str
    row: int
    id: str | None = None
    reason: str


class IngestSummary(BaseModel):
    collection: str
    fingerprint: str
    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    near_duplicates: int = Field(0, description="Listings folded into an earlier near-identical copy (ingest.near_duplicate_threshold).")
    pruned: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    rejects_path: str | None = None
    near_duplicates_path: str | None = Field(None, description="JSONL of the folded listings: id, row, kept id, kept row, Jaccard.")

    @property
    def listings_per_s(self) -> float:
        done = self.added + self.updated + self.unchanged
        return done / self.seconds if self.seconds > 0 else 0.0


class SourceListing(ListingFacts):
    """A retrieved listing as shown with an answer: its best-matching chunk and the retriever's score."""

    rank: int
    score: float
    chunk: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    unmet: list[str] = Field(default_factory=list, description="Understood constraints this listing misses (a closest match).")


class Constraint(BaseModel):
    """One constraint understood from a question: its kind, the words that stated it, and what was understood."""

    key: Literal["location", "workplace", "employment", "min_pay", "level"]
    phrase: str = Field(description="The words of the question, e.g. 'over 80k'.")
    label: str = Field(description="What was understood, e.g. 'pays ≥ $80,000 a year'.")


class Answer(BaseModel):
    """What the chat pipeline returns (`jobrag ask --json` prints exactly this)."""

    question: str
    query: str = Field(description="The standalone retrieval query after condensing the history.")
    text: str = Field(description="Markdown-safe: listing text in it is inert (no links, images, HTML, URLs or fake citations).")
    cited_ids: list[str] = Field(default_factory=list)
    dropped_citations: list[str] = Field(default_factory=list, description="Ids the LLM cited that were not retrieved.")
    understood_filters: list[Constraint] = Field(default_factory=list, description="Constraints understood from the question.")
    ignored_filters: list[str] = Field(default_factory=list, description="Keys of understood constraints the user dropped (not applied).")
    constraints_applied: bool = Field(False, description="The understood constraints (less the dropped ones) were applied as filters.")
    constraints_met: int = Field(0, description="Sources that meet every understood constraint (when applied, they come first).")
    generated_sentences: int = Field(0, description="Sentences the model wrote (before the groundedness check).")
    unsupported_removed: int = Field(0, description="Of those, sentences removed because a fact in them is in no listing they cite.")
    model_text: str = Field("", description="The model-written sentences that were delivered (they passed the check).")
    sources: list[SourceListing] = Field(default_factory=list)
    notice: str | None = Field(None, description="Shown to the user, e.g. the LLM was unreachable and sources are shown instead.")
    retriever: str = ""
    llm: str = ""
    timings: dict[str, float] = Field(default_factory=dict)


class IRSplit(BaseModel):
    """Queries, a corpus and which documents answer which query (llama-index EmbeddingQAFinetuneDataset / BEIR shape)."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant_docs: dict[str, list[str]]
    graded: dict[str, dict[str, int]] = Field(default_factory=dict, description="Optional graded qrels (query -> doc -> grade).")

    def pairs(self) -> list[tuple[str, str, str]]:
        """(query id, query, positive document text) for every relevant document present in the corpus."""
        return [(q, self.queries[q], self.corpus[d]) for q, docs in self.relevant_docs.items() for d in docs
                if q in self.queries and d in self.corpus]


class ScoredPairs(BaseModel):
    """Sentence pairs with a similarity score in [0, 1] (STS-B) or a 0/1 label (duplicate questions)."""

    sentence1: list[str]
    sentence2: list[str]
    score: list[float]


class TrainingData(BaseModel):
    """What `jobrag finetune` trains on: IR splits (pairs datasets, BEIR) or scored pairs (STS-B)."""

    kind: Literal["ir", "scored"]
    name: str
    train: IRSplit | ScoredPairs
    val: IRSplit | ScoredPairs
    test: IRSplit | ScoredPairs | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    groups: dict[str, str] = Field(default_factory=dict, description="listing id -> leakage group (entity), for the batch sampler.")
