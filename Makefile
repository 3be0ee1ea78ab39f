# Two commands matter: `make demo` (the product on the emulators) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# google-api-core warns on every import that Python 3.11 support ends in 2027: noise in demo output.
export PYTHONWARNINGS := ignore::FutureWarning

.PHONY: help venv up down demo test lint typecheck unit integration e2e bench bundle clean provider-schema bigquery-schemas chromium

help:
	@echo "make demo   start the whole stack on the emulators, play the demo scenario, stop"
	@echo "make test   install, then ruff + mypy + terraform fmt + the full pytest suite"
	@echo "make up     start the stack and keep it running (Ctrl-C stops it); make down from another shell"
	@echo "make bench  run the benchmarks in bench/"

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/python -m infra.local.stack up

down: $(STAMP)
	$(BIN)/python -m infra.local.stack down

demo: $(STAMP)
	$(BIN)/python -m infra.local.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The google provider's schema (prebuilt CDK bindings, a wheel read as data, never installed) for the
# Terraform check in tests/infra/test_provider_schema.py. Without PyPI the check is skipped with a message.
PROVIDER_SCHEMA_REQ := tests/infra/provider-schema.txt
PROVIDER_SCHEMA_DIR := .cache/provider-schema
PROVIDER_SCHEMA_VER := $(shell sed -n 's/^cdktf-cdktf-provider-google==\([^ ]*\).*/\1/p' $(PROVIDER_SCHEMA_REQ))

provider-schema: $(STAMP)
	@ls $(PROVIDER_SCHEMA_DIR)/cdktf_cdktf_provider_google-$(PROVIDER_SCHEMA_VER)-*.whl >/dev/null 2>&1 || \
	  $(BIN)/pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes \
	    -r $(PROVIDER_SCHEMA_REQ) -d $(PROVIDER_SCHEMA_DIR) || \
	  echo "warning: could not fetch the google provider schema wheel; its Terraform check will be skipped"

# BigQuery table schemas from the event contracts (tests fail when the checked-in ones differ).
bigquery-schemas: $(STAMP)
	$(BIN)/python -m infra.local.analytics schemas

# The system Chromium the console's browser tests drive through Playwright (never Playwright's own browser
# download). Installed with apt-get when missing; where that is impossible the browser tests skip themselves.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "warning: no chromium and no apt-get: the browser tests (tests/browser) will be skipped"; \
	else \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "installing Debian's chromium for the browser tests (apt-get) ..."; \
	  { $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	      $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; } || \
	  echo "warning: could not install chromium with apt-get (root or sudo needed): the browser tests will be skipped"; \
	fi

test: lint typecheck provider-schema chromium
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench

bundle: $(STAMP)
	$(BIN)/python -m infra.bundle

clean:
	rm -rf $(VENV) .stack build demo-output .cache
