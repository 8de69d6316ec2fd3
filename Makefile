# keepwarm: `make run` starts the embedded stack, `make test` runs every check.
# Both create .venv with the interpreter in $(PYTHON) (3.11+) and install keepwarm into it.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint bench clean vendor

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "keepwarm needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/keepwarm up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# tests/ui/ drive Debian's Chromium (never a Playwright download): installed here when missing.
CHROMIUM = /usr/bin/chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "tests/ui need Chromium at $(CHROMIUM)"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# pytest runs in two worker processes (pytest-xdist; each with its own Temporal servers and
# PostgreSQL database): the tests wait on servers and browsers much of the time, so two
# share the two cores. mypy needs a core for half a minute from a fresh clone and runs
# beside them; either failing fails the target.
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy & types=$$!; $(BIN)/pytest -n 2; tests=$$?; wait $$types; checked=$$?; \
		test $$tests -eq 0 && test $$checked -eq 0

bench: $(STAMP)
	$(BIN)/python bench/intake.py
	$(BIN)/python -m bench.first_touch --workers 2
	$(BIN)/python -m bench.wakeup
	$(BIN)/python -m bench.lead_cpu

# The only way to change a vendored browser file (needs npm; CI never runs it). After editing a
# version in a vendor.json: make vendor UPDATE=1, then review the manifest's diff.
vendor: $(STAMP)
	$(BIN)/python -m api.ui.vendor $(if $(UPDATE),--update)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
