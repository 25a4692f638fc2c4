# Two entry points (see README): `make run` and `make test`. Both build .venv/ first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# llama.cpp built for any x86-64 with AVX2: a native build used instructions (AVX-512, AMX)
# that a virtual CPU can advertise and still fault on. pip caches the wheel it builds.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test unit bench check-reliability clean browser ocr fonts docs

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: otherwise pip resolves a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# The [ray] extra too: tests/test_ray.py runs a two-node Ray cluster on 127.0.0.1;
	# [plot] and [bench] because the tests run `rag eval --plot` and our side of `rag bench`;
	# [docs] because they build the documentation site.
	$(BIN)/pip install --quiet -e '.[dev,ray,plot,bench,docs]'
	touch $(STAMP)

# The [llm] extra for the tests only (`make run` needs no LLM): a source build, ~5 min once.
$(TEST_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[llm]'
	touch $(TEST_STAMP)

install: $(STAMP)

# tests/test_webui.py drives Debian's Chromium through its chromedriver (selenium downloads
# nothing): installed with apt when missing and we are root, else say what to run.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "make test needs Chromium and its driver for tests/test_webui.py: run" >&2; \
		echo "  sudo apt-get install -y chromium chromium-driver" >&2; exit 1; \
	fi

# OCR (rag/ocr.py) reads scans with Tesseract's English data from Debian; the library itself
# comes in the tesserocr wheel. Installed with apt when missing and we are root, else say so.
ocr:
	@if [ -f /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng; \
	else \
		echo "OCR of scanned PDFs and images needs Tesseract's English data: run" >&2; \
		echo "  sudo apt-get install -y tesseract-ocr tesseract-ocr-eng   (or set RAG_OCR=off)" >&2; \
	fi

# The tests render scans in these fonts (eval/scans.py).
fonts:
	@if [ -f /usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf ] && [ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core fonts-liberation; \
	else \
		echo "make test renders scans in DejaVu and Liberation fonts: run" >&2; \
		echo "  sudo apt-get install -y fonts-dejavu-core fonts-liberation" >&2; exit 1; \
	fi

run: $(STAMP) ocr
	$(BIN)/rag ingest seeds/
	$(BIN)/rag search "What areas of cooperation does the NPEC study propose?" -k 3
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

test: $(TEST_STAMP) browser ocr fonts
	$(BIN)/ruff check rag api eval tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -q

# The documentation site in site/, offline: the HTTP examples answered by a real server over
# the seeds, then the pages (the reference ones generated from the code).
docs: $(STAMP)
	$(BIN)/python -m eval.docsite.examples
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Pure logic only (no model, server or subprocess): seconds, for the edit-test loop.
unit: $(STAMP)
	$(BIN)/pytest -q -m unit

bench: $(STAMP)
	$(BIN)/python -m eval.bench.core

# Crash points, writers racing readers, API fuzzing and a 10-minute soak (about 17 min);
# the quick parts of each run in `make test` (tests/test_reliability.py).
check-reliability: $(STAMP)
	mkdir -p eval/results
	$(BIN)/python -m eval.reliability.crash --json eval/results/crash.json
	$(BIN)/python -m eval.reliability.concurrency --json eval/results/concurrency.json
	$(BIN)/python -m eval.reliability.fuzz --json eval/results/fuzz.json
	$(BIN)/python -m eval.reliability.soak --minutes 10 --json eval/results/soak.json

clean:
	rm -rf $(VENV) index/snapshots index/CURRENT site
