"""One nested settings model for the whole app.

Precedence, lowest first: field defaults < `settings.yaml` < `settings-<profile>.yaml` for each profile named in
`JOBRAG_PROFILES` (comma-separated, later wins) < `JOBRAG_*` environment variables (nested with `__`, e.g.
`JOBRAG_EMBEDDING__MODEL`) < explicit overrides passed by the CLI. The YAML files are read from `JOBRAG_CONFIG_DIR`
(default: the current directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from rag_app.filters import ListingFilters

# Every swap point's modes, written once: factories, CLI flags and the UI derive their lists from these.
EmbeddingMode = Literal["sentence-transformers", "openai"]
EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]
StoreMode = Literal["persistent", "http"]
RetrieverMode = Literal["dense", "bm25", "hybrid"]
FusionMode = Literal["rrf", "convex"]
LLMMode = Literal["local", "openai", "none"]
LossName = Literal["mnrl", "cached-mnrl", "cosent", "contrastive", "triplet"]
NegativeSource = Literal["dense", "bm25", "both"]
KeyphraseMode = Literal["tfidf", "yake", "keybert"]
JudgeMode = Literal["none", "openai"]
AnswerStyle = Literal["auto", "cited", "evidence"]
EMBEDDING_MODES: tuple[str, ...] = get_args(EmbeddingMode)
EMBEDDING_BACKENDS: tuple[str, ...] = get_args(EmbeddingBackend)
STORE_MODES: tuple[str, ...] = get_args(StoreMode)
RETRIEVER_MODES: tuple[str, ...] = get_args(RetrieverMode)
FUSION_MODES: tuple[str, ...] = get_args(FusionMode)
LLM_MODES: tuple[str, ...] = get_args(LLMMode)
LOSSES: tuple[str, ...] = get_args(LossName)
JUDGE_MODES: tuple[str, ...] = get_args(JudgeMode)

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"
DEFAULT_LLM_PROMPT = """Write {n} different search queries that a job seeker might type to find the job posting below.
Vary them: search-box keywords, a first-person request, an abbreviation or paraphrase of the role, skills or duties,
and a constraint the posting meets (place, remote, pay, schedule, seniority). Never copy the job title verbatim and
never name the company. One query per line, no numbering.

Posting:
{listing}"""


class EmbeddingSettings(BaseModel):
    mode: EmbeddingMode = Field(
        "sentence-transformers", description="Embedder backend: a local/hub sentence-transformers model or an OpenAI-compatible endpoint.")
    model: str = Field(DEFAULT_EMBEDDER, description="Hub name or local directory (sentence-transformers), or the endpoint's model name (openai).")
    query_prompt: str = Field("", description="Prefix added to queries before embedding, e.g. 'query: ' for e5 or a bge instruction.")
    document_prompt: str = Field("", description="Prefix added to documents (chunks) before embedding, e.g. 'passage: ' for e5.")
    batch_size: int = Field(32, ge=1, description="Texts per forward pass.")
    max_seq_length: int | None = Field(None, ge=8, description="Truncation length in word pieces; None keeps the model's own (256 for MiniLM).")
    normalize: bool = Field(True, description="L2-normalise embeddings so cosine and dot product agree.")
    device: str | None = Field(None, description="torch device ('cpu', 'cuda', 'cuda:1', 'mps'); None picks the best available.")
    devices: list[str] = Field(default_factory=list, description="Several devices (e.g. ['cuda:0','cuda:1']) encode through sentence-transformers' multi-process pool during ingestion.")
    api_base: str | None = Field(None, description="openai mode: base URL of the OpenAI-compatible embeddings endpoint.")
    api_key: SecretStr | None = Field(None, description="openai mode: API key (prefer the JOBRAG_EMBEDDING__API_KEY env var).")
    trust_remote_code: bool = Field(False, description="Allow models that ship custom modelling code.")
    backend: EmbeddingBackend = Field("torch", description="sentence-transformers mode: run the encoder in torch, or in ONNX Runtime "
                                      "(fp32 `onnx`, or `onnx-int8`: dynamic int8 quantisation, ~1.7x faster on a CPU); the ONNX export is "
                                      "built beside the weights (or under onnx_dir) on first use. Part of the collection fingerprint.")
    onnx_threads: int | None = Field(None, ge=1, description="onnx backends: ONNX Runtime intra-op threads; None = one per physical core.")
    onnx_dir: Path | None = Field(None, description="onnx backends: where exports are built when the model's own directory is an installed "
                                  "package or not writable; default <home>/cache/onnx (one sub-directory per weights hash).")


class StoreSettings(BaseModel):
    mode: StoreMode = Field("persistent", description="Embedded Chroma on disk, or Chroma's own server (`chroma run`).")
    path: Path | None = Field(None, description="persistent mode: directory of the Chroma database; default <home>/chroma.")
    host: str = Field("127.0.0.1", description="http mode: server host.")
    port: int = Field(8000, description="http mode: server port.")
    ssl: bool = Field(False, description="http mode: use HTTPS.")
    headers: dict[str, str] = Field(default_factory=dict, description="http mode: extra request headers, e.g. an auth token.")
    collection: str | None = Field(None, description="Pin a collection name; default derives one from the embedder fingerprint.")


class IngestSettings(BaseModel):
    source: str = Field("sample", description="Default source: 'sample', a CSV/JSONL/Parquet path, or 'hub:NAME'.")
    chunk_size: int = Field(256, ge=32, description="Chunk size in the embedder's word pieces, listing header included.")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between consecutive chunks, in word pieces.")
    max_chunks: int | None = Field(1, ge=1, description="Embed only each listing's first N chunks (1 = header + the opening of the "
                                   "description, as one vector per listing: better on dev_a and ~4x faster to ingest); None embeds them "
                                   "all (the setting before it became 1). Part of the collection fingerprint.")
    batch_listings: int = Field(64, ge=1, description="Listings embedded and written per batch (the resume granularity).")
    max_description_chars: int = Field(100_000, ge=1000, description="Longer descriptions are rejected with a reason.")
    min_description_chars: int = Field(30, ge=1, description="Shorter (after cleaning) descriptions are rejected.")
    max_title_chars: int = Field(300, ge=20, description="Longer titles are rejected with a reason when the row is read (the title is "
                                 "embedded with every chunk; real titles stay under 200 chars).")
    max_field_chars: int = Field(300, ge=20, description="Longer company, location, salary, work_type or experience_level values are "
                                 "rejected with a reason when the row is read (header fields are embedded with every chunk).")
    column_map: dict[str, str] = Field(default_factory=dict, description="Listing field -> source column, e.g. {'description': 'Job Description'}.")
    near_duplicate_threshold: float | None = Field(0.9, ge=0, le=1, description="Fold a listing into an earlier one with the same title "
                                                   "(stemmed), company, location and work type whose description shares this Jaccard "
                                                   "similarity of word 3-shingles (MinHash); folds are listed in reports/ingest-near-duplicates.jsonl. "
                                                   "0 or null: off.")
    lock_timeout_s: float | None = Field(60.0, ge=0, description="A second ingest into a collection that another ingest is writing waits "
                                         "this long (logging the holder), then fails naming it; 0 fails at once, null waits forever.")


class RetrievalSettings(BaseModel):
    mode: RetrieverMode = Field("hybrid", description="Retriever used by chat, `ask`, the UI and the API (hybrid rebuilds a "
                                                      "missing BM25 copy from the collection on first use).")
    top_k: int = Field(10, ge=1, description="Listings returned per query.")
    candidate_k: int = Field(50, ge=1, description="Chunks fetched per retriever before collapsing to listings and fusing.")
    dense_weight: float = Field(1.0, ge=0, description="hybrid: weight of the dense ranking in reciprocal-rank fusion.")
    bm25_weight: float = Field(1.0, ge=0, description="hybrid: weight of the BM25 ranking in reciprocal-rank fusion.")
    rrf_k: int = Field(60, ge=1, description="hybrid: the k constant of reciprocal-rank fusion.")
    fusion: FusionMode | None = Field(None, description="hybrid: rrf (weighted reciprocal-rank fusion: dense_weight, bm25_weight, rrf_k) or "
                                      "convex (fusion_alpha * min-max dense score + (1 - fusion_alpha) * min-max BM25 score). null: the "
                                      "fusion.json `jobrag finetune` wrote next to the model when there is one, else rrf. Set it to pin "
                                      "the method and these settings' weights.")
    fusion_alpha: float = Field(0.5, ge=0, le=1, description="hybrid, fusion=convex: weight of the dense score (1 - alpha: BM25).")
    fusion_depth: int = Field(50, ge=1, description="hybrid, fusion=convex: each list's top N candidates set its min-max range (deeper "
                              "ones score below 0), so a deep `compare` fuses the head as chat does; `jobrag finetune` tunes at this depth.")
    rerank_model: str = Field(DEFAULT_RERANKER, description="Cross-encoder of a spec ending in +rerank (no model named): hub name, or a "
                              "local dir from `jobrag train-reranker` (offline machines).")
    rerank_depth: int = Field(30, ge=1, description="+rerank: listings of the first stage re-scored by the cross-encoder (header + first "
                              "chunk); the rest keep their order below them.")
    understand: bool = Field(True, description="Apply the constraints understood from each question (place, remote, pay floor, employment, "
                                               "seniority) as filters in chat, the UI and the API; the closest other matches fill in, "
                                               "each with what it misses.")
    understand_margin: float = Field(0.1, ge=0, le=2, description="A listing that meets the understood constraints comes first only when "
                                     "its cosine to the question is at most this much below the reference listing's (else it is a weaker match).")
    understand_reference_rank: int = Field(1, ge=1, description="The reference listing: the one at this rank of the search without the "
                                           "understood constraints (1 = the best match).")
    filters: ListingFilters = Field(default_factory=ListingFilters, description="Default listing filters (location, workplace, employment, "
                                                                                "min_pay, currency, level); --filter flags replace them.")


class LLMSettings(BaseModel):
    mode: LLMMode = Field("local", description="local GGUF model, an OpenAI-compatible endpoint, or no generation.")
    model: str | None = Field(None, description="openai mode: the endpoint's model name (required); local mode: a .gguf path, "
                                                "default the packaged SmolLM2-135M-Instruct.")
    api_base: str | None = Field(None, description="openai mode: base URL (OpenAI, vLLM, Ollama, llama.cpp server).")
    api_key: SecretStr | None = Field(None, description="openai mode: API key (prefer the JOBRAG_LLM__API_KEY env var).")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(2, ge=0, description="Retries on transient errors.")
    max_new_tokens: int = Field(256, ge=1, description="Generation budget per answer.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy, reproducible).")
    answer_style: AnswerStyle = Field(
        "auto", description="cited: the model writes one answer citing [id]s (capable models); evidence: code writes each listing's facts "
                            "and quotes its best-matching sentences, the model at most one framing line (small local models); "
                            "auto: evidence for local, cited otherwise. Every model sentence passes the groundedness check.")
    framing: bool = Field(False, description="evidence style: let the model add one framing line (checked like every model sentence). Off: "
                                             "SmolLM2-135M's lines were content-free or wrong even when they passed the check (docs/RESULTS.md).")
    framing_tokens: int = Field(40, ge=8, description="evidence style: token budget of the model's one framing line.")
    evidence_sentences: int = Field(2, ge=1, le=5, description="Sentences quoted from each listing (the ones that best match the question).")
    @property
    def writes(self) -> bool:
        """Whether a model writes any part of an answer (else answers are code-written and no model needs loading)."""
        style = self.answer_style if self.answer_style != "auto" else "evidence" if self.mode == "local" else "cited"
        return self.mode != "none" and (style == "cited" or self.framing)

    context_listings: int = Field(5, ge=1, description="Listings placed in the prompt (the best-ranked ones).")
    context_chars: int = Field(700, ge=100, description="Characters of each listing's matching chunk placed in the prompt.")


class FinetuneSettings(BaseModel):
    base_model: str = Field(DEFAULT_EMBEDDER, description="Model to fine-tune.")
    loss: LossName = Field("mnrl", description="Training loss.")
    matryoshka: bool = Field(False, description="Wrap the loss in MatryoshkaLoss.")
    epochs: int = Field(1, ge=1, description="Training epochs.")
    batch_size: int = Field(32, ge=2, description="Per-device batch size (in-batch negatives for MNRL).")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="Share of steps used for linear warmup.")
    max_seq_length: int = Field(128, ge=16, description="Truncation length during training (the model is saved at its own length).")
    eval_steps: int = Field(0, ge=0, description="Evaluate on val and checkpoint every N steps (best kept); 0 = once per epoch.")
    seed: int = Field(42, description="Seed for generation, splits, mining and training.")
    same_role_negatives: bool = Field(False, description="Let listings of the positive's own occupation (core title) serve as negatives, "
                                      "mined and in-batch. Off: a job seeker calls them relevant too.")
    negatives: NegativeSource = Field("dense", description="Where mined hard negatives come from: `dense` (the base model's near misses), "
                                      "`bm25` (listings sharing the query's words, not its job) or `both` (one of each per pair).")
    queries_per_listing: int = Field(2, ge=1, description="Generated queries per listing.")
    tune_fusion: bool = Field(True, description="After training on (query, listing) data, tune the hybrid fusion (method and weight) on the "
                              "val split and write fusion.json next to the model; hybrid retrievers over it use it unless retrieval.fusion is set.")
    reranker_base: str = Field(DEFAULT_EMBEDDER, description="`jobrag train-reranker`: checkpoint the cross-encoder starts from (a "
                               "sentence-embedding model gets a fresh one-output head).")
    reranker_eval_queries: int = Field(200, ge=1, description="`jobrag train-reranker`: val queries whose top rerank_depth listings "
                                       "(of the base embedder) are re-ranked before and after training.")
    keyphrases: KeyphraseMode = Field("tfidf", description="gen-pairs: how a listing's distinctive terms are mined from its header and "
                                      "opening: `tfidf` (single words), `yake` or `keybert` (keyphrases; `pip install 'jobrag[keyphrases]'`).")
    specifics_weight: float = Field(0.0, ge=0, description="gen-pairs: weight of the `specifics` query style (role + 2-3 keyphrases + "
                                    "city or employer type) next to the other styles, whose weights sum to 1; 0 = off.")
    time_budget: str | None = Field(None, pattern=r"^\s*\d+(\.\d+)?\s*[smh]?\s*$", description="Wall-clock budget of a fine-tune, e.g. "
                                    "90s, 10m, 1h: the first steps are timed and the schedule (steps, warm-up, evaluations) sized to fit.")
    llm_prompt: str = Field(DEFAULT_LLM_PROMPT, description="gen-pairs --generator llm: prompt with {n} and {listing} placeholders.")


class EvalSettings(BaseModel):
    bootstrap_resamples: int = Field(2000, ge=100, description="Paired bootstrap resamples for confidence intervals.")
    permutations: int = Field(10000, ge=100, description="Sign-flip permutations for paired p-values.")
    seed: int = Field(0, description="Seed for resampling.")
    judge_api_base: str | None = Field(None, description="`compare --judge openai`: the judge's OpenAI-compatible base URL (default llm.api_base).")
    judge_model: str | None = Field(None, description="`compare --judge openai`: the judge model name (default llm.model).")
    judge_api_key: SecretStr | None = Field(None, description="The judge's API key (prefer JOBRAG_EVAL__JUDGE_API_KEY; default llm.api_key).")


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="`jobrag serve`: interface to bind (loopback by default; put a proxy or load balancer in front).")
    port: int = Field(8000, ge=1, le=65535, description="`jobrag serve`: port.")
    api_key: SecretStr | None = Field(None, description="Bearer token every request must carry (Authorization: Bearer KEY), except "
                                                        "/healthz and /readyz; None serves without one (prefer JOBRAG_SERVER__API_KEY).")
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed to call the API (CORS); none by default.")
    llm_concurrency: int = Field(2, ge=1, description="Answers a model writes at once; the rest wait in the queue. Retrieval is not "
                                                      "limited (it runs concurrently with generation).")
    llm_queue: int = Field(8, ge=0, description="Requests that may wait for a generation slot; one more is refused at once with 429 "
                                                "and Retry-After (never a hang).")
    llm_queue_timeout_s: float = Field(60.0, gt=0, description="A queued request waiting longer than this gets the code-written answer "
                                                               "with a notice instead of the model's.")
    retry_after_s: int = Field(2, ge=1, description="Retry-After seconds sent with 429 (queue full) and 503 (not ready).")
    max_body_bytes: int = Field(65_536, ge=1024, description="Larger request bodies are refused with 413.")
    max_query_chars: int = Field(1000, ge=10, description="Longest query, question or chat message (422 beyond).")
    max_k: int = Field(50, ge=1, description="Largest k (listings per request) a caller may ask for (422 beyond).")
    max_history: int = Field(20, ge=0, description="Earlier turns a caller may send with a question (422 beyond).")
    shutdown_timeout_s: float = Field(30.0, gt=0, description="On SIGTERM, in-flight requests get this long to finish before the "
                                                              "server exits.")
    retrieval_concurrency: int | None = Field(None, ge=1, description="Searches running at once (query embedding, Chroma, BM25); more "
                                                                   "wait their turn in arrival order. None: the CPU count (oversubscribed "
                                                                   "cores slow every search down and make the tail unfair).")
    workers: int = Field(1, ge=1, description="`jobrag serve` worker processes (uvicorn), each with its own models: the Python part of "
                                              "a search holds one core, so N workers use N cores. Over 1 needs a Chroma server "
                                              "(`store.mode: http`): embedded Chroma is not safe to share between processes.")
    torch_threads: int | None = Field(1, ge=1, description="torch intra-op threads per request (query embedding): 1 lets concurrent "
                                                         "requests use the cores side by side instead of oversubscribing them "
                                                         "(on 2 busy cores a query embedded 4x faster); None keeps torch's default.")


class Settings(BaseSettings):
    """Effective jobrag settings."""

    model_config = SettingsConfigDict(env_prefix="JOBRAG_", env_nested_delimiter="__", extra="forbid")

    home: Path = Field(Path(".jobrag"), description="State directory: chroma/, models/, reports/, cache/.")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description='Sentence-embedding model used to index and query.')
    store: StoreSettings = Field(default_factory=StoreSettings, description='Chroma vector store.')
    ingest: IngestSettings = Field(default_factory=IngestSettings, description='Reading, cleaning, chunking and writing listings.')
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description='Retrievers used by chat, the UI and compare.')
    llm: LLMSettings = Field(default_factory=LLMSettings, description='Answer generation.')
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings, description='Pair generation and embedder fine-tuning.')
    eval: EvalSettings = Field(default_factory=EvalSettings, description='Compare reports and statistics.')
    server: ServerSettings = Field(default_factory=ServerSettings, description='The HTTP API (`jobrag serve`).')

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_sources = [YamlConfigSettingsSource(settings_cls, yaml_file=path) for path in reversed(settings_files())]
        return (init_settings, env_settings, *yaml_sources)

    @property
    def chroma_path(self) -> Path:
        return self.store.path or self.home / "chroma"

    @model_validator(mode="after")
    def _onnx_dir_under_home(self) -> Settings:
        if self.embedding.onnx_dir is None:
            self.embedding.onnx_dir = self.home / "cache" / "onnx"
        return self

    def dir(self, name: Literal["models", "reports", "cache", "chroma"]) -> Path:
        path = self.chroma_path if name == "chroma" else self.home / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def profiles() -> list[str]:
    return [p.strip() for p in os.environ.get("JOBRAG_PROFILES", "").split(",") if p.strip()]


def settings_files() -> list[Path]:
    """YAML files in precedence order, lowest first; only those that exist."""
    config_dir = Path(os.environ.get("JOBRAG_CONFIG_DIR", "."))
    names = ["settings.yaml", *(f"settings-{p}.yaml" for p in profiles())]
    missing = [n for n in names[1:] if not (config_dir / n).is_file()]
    if missing:
        from rag_app.errors import ConfigError

        raise ConfigError(f"profile file(s) {', '.join(missing)} not found in {config_dir.resolve()} (JOBRAG_PROFILES={os.environ['JOBRAG_PROFILES']!r})")
    return [config_dir / n for n in names if (config_dir / n).is_file()]


def load_settings(**overrides: Any) -> Settings:
    """Build the effective settings; `overrides` are nested dicts that win over every file and env var.

    Invalid values raise a one-line ConfigError naming the field, e.g. `embedding.mode: Input should be ...`.
    """
    from pydantic import ValidationError

    from rag_app.errors import ConfigError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
