"""A listing's distinctive search terms, for template queries: `tfidf` words, or `yake` / `keybert` keyphrases.

All three read what a posting's reader sees: the header plus about the first 1,000 characters of the description
(the serving model's 256 word pieces; a person skims a similar amount). A term from further down is invisible to the
model, so a query built on it teaches noise.

- `tfidf` (default): single words that TF-IDF ranks high and that also occur in at least two listings' titles
  (domain words: railroad, radiology, embedded...), never a word of the listing's own title, company or place.
- `yake` (YAKE!, statistical, offline, per listing) and `keybert` (KeyBERT with the base sentence-transformers model:
  the n-grams whose embedding is closest to the listing's, diversified with MMR) propose phrases of up to three
  words ('media mix optimization', 'medi cal claims', 'power bi'). Both go through the same filter:
  - ad-copy and stop words are trimmed from a phrase's ends, and what is left must be a run of the text with no
    stop, ad-copy or filler word and no punctuation inside ('afraid of challenges', 'cutting edge machine' go);
  - a phrase naming the company or the place, or only restating the title (after stemming), goes;
  - a phrase must hold a specific word (`specific_words`: a tool or programme name, a domain word of other titles,
    or a token with a digit or +/#);
  - it must be distinctive in the corpus, inside the TF-IDF window: in at least 3 listings (a phrase only one
    posting uses is ad copy more often than a skill) and at most 5% of them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence

from rag_app.errors import ConfigError
from rag_app.records import JobListing

logger = logging.getLogger(__name__)

KEYPHRASE_MODES = ("tfidf", "yake", "keybert")
TERM_WINDOW_CHARS = 1000
# Words every job ad uses: useless as search terms.
GENERIC_AD_WORDS = frozenset("""ability able apply applicant applicants applications candidate candidates career company duties
employee employees employer employment environment equal excellent experience experienced field functions including job jobs
knowledge looking opportunity opportunities plus position positions preferred qualifications required requirements responsibilities
role roles skills strong successful team teams work working years year join help new related provide ensure within across based
various well including also must make great best world class high highly help haves nice offer offers benefits pay salary
january february march april may june july august september october november december monday tuesday wednesday thursday
friday saturday sunday yrs year's hour hours week weeks day days month months annual annually per central north south east
west northern southern eastern western nationally national local locally daily weekly today immediately currently""".split())
# Words that open or close a keyphrase without saying anything a searcher types ('familiarity with aws' -> 'aws').
PHRASE_FILLER = frozenset("""familiarity familiar proficiency proficient understanding exposure background expertise expert hands
using use used etc ideal ideally demonstrated proven solid good deep bonus desired description summary overview talented
seeking passionate exciting motivated full part time cutting edge""".split())
TOKEN = r"[a-z][a-z0-9+#]*"


def document_frequency_window(n_docs: int) -> tuple[int, int | float]:
    """TF-IDF (min_df, max_df) for a corpus of `n_docs`: a distinctive term is in at least 3 listings and at most 5% of them.

    Below 60 listings 5% is under 3 listings, so the floor drops (1 listing per 20, at least 1) and the ceiling becomes a
    count no lower than the floor: scikit-learn refuses a window whose ceiling is below its floor.
    """
    min_df = min(3, max(1, n_docs // 20))
    return (min_df, 0.05) if 0.05 * n_docs >= min_df else (min_df, max(min_df, math.ceil(0.05 * n_docs)))


def window(listing: JobListing) -> str:
    return f"{listing.header()}\n\n{listing.description[:TERM_WINDOW_CHARS]}"


def own_words(listing: JobListing) -> set[str]:
    """Words of the listing's company and place: a query naming them matches by name, not by what the job is."""
    return set(re.findall(r"[a-z]+", f"{listing.company or ''} {listing.location or ''}".lower()))


def extract(mode: str, listings: Sequence[JobListing], n: int = 8, model: str | None = None) -> dict[str, list[str]]:
    """listing id -> up to `n` distinctive terms or keyphrases, best first. `model`: keybert's sentence-transformers model."""
    if mode == "tfidf":
        return tfidf_terms(listings, n)
    if mode == "yake":
        raw = yake_phrases([window(x) for x in listings])
    elif mode == "keybert":
        raw = keybert_phrases([window(x) for x in listings], model)
    else:
        raise ConfigError(f"unknown keyphrases mode {mode!r}; valid: {', '.join(KEYPHRASE_MODES)}")
    return distinctive(listings, raw, n)


def tfidf_terms(listings: Sequence[JobListing], n: int) -> dict[str, list[str]]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    stop = sorted(ENGLISH_STOP_WORDS | GENERIC_AD_WORDS)
    min_df, max_df = document_frequency_window(len(listings))
    vec = TfidfVectorizer(stop_words=stop, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z+#]{2,}\b", min_df=min_df, max_df=max_df,
                          sublinear_tf=True, max_features=200_000)
    try:
        matrix = vec.fit_transform([x.description[:TERM_WINDOW_CHARS] for x in listings])
    except ValueError as exc:  # a tiny or stop-word-only corpus leaves no term in the window: queries go without terms
        logger.info("no distinctive terms in %d listings (%s); template queries use role, place and duties only", len(listings), exc)
        return {x.id: [] for x in listings}
    vocab = vec.get_feature_names_out()
    # Domain words: a term must also occur in the titles of at least two listings of the corpus (railroad, radiology,
    # petroleum, embedded …). This drops the adverbs and ad-copy verbs TF-IDF also ranks high (simply, comprise,
    # believes) that no job seeker types, without any hand-made list of skills.
    title_counts: dict[str, int] = {}
    for x in listings:
        for w in set(re.findall(r"[a-z][a-z+#]{2,}", x.title.lower())):
            title_counts[w] = title_counts.get(w, 0) + 1
    domain = {w for w, c in title_counts.items() if c >= 2}
    out = {}
    for row, listing in enumerate(listings):
        banned = own_words(listing) | set(re.findall(r"[a-z]+", listing.title.lower()))
        scores = matrix.getrow(row)
        ranked = [vocab[i] for i in scores.indices[scores.data.argsort()[::-1]]]
        out[listing.id] = [t for t in ranked if t in domain and not set(t.split()) & banned][:n]
    return out


def yake_phrases(texts: list[str], top: int = 60) -> list[list[str]]:
    """YAKE keyphrases (up to 3 words) of each text, best first."""
    try:
        import yake
    except ImportError:
        raise ConfigError("--keyphrases yake needs the yake package: pip install 'jobrag[keyphrases]'") from None
    from tqdm.auto import tqdm

    extractor = yake.KeywordExtractor(lan="en", n=3, top=top, dedup_lim=0.7)
    return [[phrase for phrase, _ in extractor.extract_keywords(t)] for t in tqdm(texts, desc="yake keyphrases", mininterval=5)]


def keybert_phrases(texts: list[str], model: str | None, top: int = 20) -> list[list[str]]:
    """KeyBERT keyphrases, MMR-diversified; candidates are 1-2 word runs between stop words and punctuation that are in
    the document-frequency window (few enough to embed the corpus vocabulary once)."""
    try:
        from keybert import KeyBERT
    except ImportError:
        raise ConfigError("--keyphrases keybert needs the keybert package: pip install 'jobrag[keyphrases]'") from None
    from sentence_transformers import SentenceTransformer
    from sklearn.feature_extraction.text import CountVectorizer

    from rag_app.model_paths import resolve_model
    from rag_app.settings import DEFAULT_EMBEDDER

    min_df, max_df = document_frequency_window(len(texts))
    vectorizer = CountVectorizer(analyzer=lambda text: [" ".join(g) for run in runs(text) for g in ngrams(run, 2)], min_df=min_df, max_df=max_df)
    kw = KeyBERT(model=SentenceTransformer(resolve_model(model or DEFAULT_EMBEDDER)))
    try:
        found = kw.extract_keywords(texts, vectorizer=vectorizer, top_n=top, use_mmr=True, diversity=0.5)
    except ValueError as exc:  # no n-gram inside the document-frequency window (tiny corpora)
        logger.info("keybert found no candidate phrases (%s)", exc)
        return [[] for _ in texts]
    if texts and found and isinstance(found[0], tuple):  # a single document comes back unnested
        found = [found]
    return [[phrase for phrase, _ in row] for row in found]


def runs(text: str) -> list[list[str]]:
    """Lowercased word runs of `text` broken at punctuation and at stop, ad-copy and filler words."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    weak = ENGLISH_STOP_WORDS | GENERIC_AD_WORDS | PHRASE_FILLER
    out = []
    for piece in re.split(r"[^\w\s+#-]|\s-\s|_", text.lower()):
        run: list[str] = []
        for token in [*re.findall(TOKEN, piece), ""]:  # "" closes the last run
            if token and token not in weak and len(token) > 1:
                run.append(token)
            elif run:
                out.append(run)
                run = []
    return out


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)]


def specific_words(listings: Sequence[JobListing]) -> set[str]:
    """Words that name something specific in this corpus: written capitalised mid-sentence most of the time (tools,
    products, programmes: Tableau, Kibana, Medi-Cal), or in the core titles of 2+ listings but at most 5% of them
    (domain words: marketing, fraud, clinical)."""
    from finetune.templates import core_role

    titles: dict[str, int] = {}
    for x in listings:
        for w in set(re.findall(TOKEN, core_role(x.title).lower())):
            titles[w] = titles.get(w, 0) + 1
    seen: dict[str, list[int]] = {}  # word -> [mid-sentence uses, capitalised ones]
    for x in listings:
        for m in re.finditer(r"(?<=[a-z0-9,;)] )([A-Za-z][A-Za-z0-9+#]*)", x.description[:TERM_WINDOW_CHARS]):
            counts = seen.setdefault(m.group(1).lower(), [0, 0])
            counts[0] += 1
            counts[1] += m.group(1)[0].isupper()
    capitalised = {w for w, (n, caps) in seen.items() if n >= 3 and caps >= 0.6 * n}
    domain = {w for w, c in titles.items() if 2 <= c <= max(2, 0.05 * len(listings))}
    return capitalised | domain


def _trim(tokens: list[str], edge: frozenset[str]) -> list[str]:
    while tokens and tokens[0] in edge:
        tokens = tokens[1:]
    while tokens and tokens[-1] in edge:
        tokens = tokens[:-1]
    return tokens


def distinctive(listings: Sequence[JobListing], raw: list[list[str]], n: int) -> dict[str, list[str]]:
    """Clean each listing's raw phrases (see the module doc) and keep the specific ones inside the document-frequency
    window, best first."""
    import Stemmer
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    stem = Stemmer.Stemmer("english").stemWord
    edge = frozenset(ENGLISH_STOP_WORDS | GENERIC_AD_WORDS | PHRASE_FILLER)
    specific = specific_words(listings)
    cleaned: list[list[str]] = []
    for listing, phrases in zip(listings, raw):
        banned = own_words(listing)
        title = {stem(t) for t in re.findall(TOKEN, listing.title.lower())} | {stem(t) for t in edge}
        spans = {g for run in runs(window(listing)) for g in ngrams(run, 3)}
        keep: list[str] = []
        for phrase in phrases:
            tokens = _trim(re.findall(TOKEN, phrase.lower()), edge)
            if (tuple(tokens) not in spans or set(re.findall(r"[a-z]+", " ".join(tokens))) & banned or {stem(t) for t in tokens} <= title  # 'electrical engineering' restates 'Electrical Engineer'
                    or any(t in GENERIC_AD_WORDS or len(t) < 2 for t in tokens) or not any(t in specific or re.search(r"[\d+#]", t) for t in tokens)):
                continue
            text = " ".join(tokens)
            if not any(f" {text} " in f" {k} " or f" {k} " in f" {text} " for k in keep):  # one of 'aws glue' and 'aws'
                keep.append(text)
        cleaned.append(keep)
    vocabulary = sorted({p for row in cleaned for p in row})
    if not vocabulary:
        return {x.id: [] for x in listings}
    floor, max_df = document_frequency_window(len(listings))
    ceiling = max_df * len(listings) if isinstance(max_df, float) else max_df
    counts = CountVectorizer(vocabulary=vocabulary, ngram_range=(1, 3), token_pattern=TOKEN, binary=True, lowercase=True)
    df = dict(zip(vocabulary, counts.transform([window(x) for x in listings]).sum(axis=0).A1.tolist()))
    return {x.id: [p for p in row if floor <= df[p] <= ceiling][:n] for x, row in zip(listings, cleaned)}
