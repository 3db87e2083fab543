"""Facts by code, words by the model: the groundedness check every generated sentence passes before anyone sees it.

A generated sentence states facts a job seeker acts on: numbers, amounts, percentages, dates and names (employers,
places, tools). `check_text` keeps a sentence only when every such fact appears in the listings that sentence cites
(a sentence that cites none is checked against all the listings the answer was written from, plus the question for
framing such as "roles paying over $80k"). Everything else is removed and counted.

- Numbers and amounts come from `quantulum3` (a maintained quantity parser: "$95k" = "95,000" = 95000 dollars,
  "10%", "two"), compared by value against the numbers quantulum3 reads in the listing text.
- Names are the capitalised or all-capital words of a sentence that are not its first word (unless it is one or two
  words long) and not everyday words;
  each must occur in the cited listings as a whole word (case-insensitive). The month names of a date are names too.
Sentences come from NLTK's punkt model as llama-index ships it (no download).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

logger = logging.getLogger(__name__)
_CITATION = re.compile(r"\[([\w.:#/-]+(?:,\s*[\w.:#/-]+)*)\]")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9&.'+-]*")
SPELLED = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
           "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000, "million": 1e6}
# Capitalised words that name nothing: sentence furniture, job-ad vocabulary, and what code itself writes.
EVERYDAY = frozenset("""i i'm i'd i've you your we our they their he she it this that these those there here a an the and or but if
so as at by for from in into of on onto to with without about after before over under per via vs also all any each every
both either neither no not only more most less many much some such than then thus very yes job jobs role roles position
positions listing listings posting postings match matches remote hybrid on-site onsite full-time part-time contract temporary
internship senior junior lead principal entry level mid manager engineer analyst nurse director assistant associate
specialist technician this job seeker applicants candidates requirements responsibilities benefits note however overall
best good great strong key see here's there's based looking""".split())


@dataclass
class Checked:
    """A generated text after the check: what is kept, and each removed sentence with the facts no cited listing has."""

    text: str
    sentences: int = 0
    removed: list[tuple[str, list[str]]] = field(default_factory=list)


def check_text(text: str, listings: dict[str, str], question: str = "", default_ids: Sequence[str] | None = None) -> Checked:
    """Keep the sentences whose facts appear in the listings they cite (`listings`: id -> its text).

    A sentence without a citation may name what the listings (`default_ids`, default: all) or the question name, but
    state only the question's numbers: a count or an amount that no listing is cited for cannot be traced.
    """
    out = Checked(text="")
    named = [listings[i] for i in (default_ids or listings) if i in listings] + [question]
    lines: list[str] = []  # the kept sentences keep their lines, so checking the result again splits it the same way
    for line in text.splitlines():
        kept: list[str] = []
        for sentence in filter(str.strip, sentences(line)):
            out.sentences += 1
            cited = [i.strip() for m in _CITATION.finditer(sentence) for i in m.group(1).split(",") if i.strip() in listings]
            missing = (unsupported(_CITATION.sub(" ", sentence), [listings[i] for i in cited]) if cited
                       else unsupported(sentence, named, numbers_from=[question]))
            if missing:
                out.removed.append((sentence.strip(), missing))
            else:
                kept.append(sentence.strip())
        lines += [" ".join(kept)] if kept else []
    out.text = "\n".join(lines)
    return out


def unsupported(sentence: str, evidence: Iterable[str], numbers_from: Iterable[str] | None = None) -> list[str]:
    """The facts of `sentence` that none of the `evidence` texts contain (empty: the sentence is supported); numbers
    are looked up in `numbers_from` instead when given."""
    evidence = list(evidence)
    sources = evidence if numbers_from is None else list(numbers_from)
    numbers = set().union(*(numbers_in(e) for e in sources)) if sources else set()
    words = " ".join(evidence).lower()
    missing = [surface for value, surface in quantities(sentence) if not any(_same(value, n) for n in numbers)]
    missing += [name for name in names(sentence) if not re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", words)]
    return missing


def sentences(text: str) -> list[str]:
    """Sentences by punkt (llama-index's bundled NLTK model); lines stay apart (a list item is its own sentence)."""
    return [s for line in text.splitlines() for s in _splitter()(line)]


def quantities(text: str) -> list[tuple[float, str]]:
    """(value, words) of every number a sentence states: digits, amounts, percentages, spelled numbers from two up."""
    out = []
    for q in _parser().parse(text):
        surface = q.surface
        if re.search(r"\d", surface) or any(w in SPELLED for w in surface.lower().split()):
            out.append((float(q.value), surface))
    return out


@lru_cache(maxsize=4096)
def numbers_in(text: str) -> frozenset[float]:
    """Every numeric value a listing text states (the same parser, so '$95k' in a sentence meets '95,000' here)."""
    values = {float(q.value) for q in _parser().parse(text)}
    values |= {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}  # also bare digits quantulum3 merges
    values |= {1000 * float(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*(?:\.\d+)?)\s?[kK]\b", text)}  # "80k" without a $
    values |= {float(v) for w, v in SPELLED.items() if re.search(rf"\b{w}\b", text, re.I)}
    return frozenset(values)


def names(sentence: str) -> list[str]:
    """Capitalised or all-capital words that are not everyday words (employers, places, tools). The first word of a
    sentence is capitalised anyway and is skipped, unless the sentence is one or two words: a line such as "Alex" (a
    sign-off) is all name."""
    words = _WORD.findall(sentence)
    out = []
    for i, word in enumerate(words):
        bare = word.strip(".'-+")
        if (i == 0 and len(words) > 2) or len(bare) < 2 or bare.lower() in EVERYDAY or not (bare[0].isupper() or bare.isupper()):
            continue
        out.append(bare)
    return list(dict.fromkeys(out))


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a))


@cache
def _parser():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantulum3 warns about its optional unit classifier
        from quantulum3 import classifier, parser
    # Its rule-based unit disambiguation: the optional classifier is a pickle of another scikit-learn release, which
    # the scikit-learn we run cannot load; which unit a number has never decides a check here, its value does.
    classifier.USE_CLF = False
    return parser


@cache
def _splitter():
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    return split_by_sentence_tokenizer()


def warm() -> None:
    """Load the parser and the sentence model now (seconds, once) rather than inside the first answer."""
    quantities("warm up $5 at 10%")
    sentences("Warm up. Two sentences.")
