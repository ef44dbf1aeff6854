# Developer entry points. `make run` for the local stack, `make test` before pushing (CI runs .ci/run = make test).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STAGE  ?= dev
export AWS_DEFAULT_REGION ?= eu-central-1

.PHONY: venv browser run test test-unit test-fast test-browser lint docs template package bench bench-quick clean reset-local

# Reinstall only when a requirements file changes (the stamp is newer than both otherwise).
venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $(STAMP)

# Local stack: moto + API on http://127.0.0.1:8000 + SQS workers + example tenants (see infra/local/run.py).
run: venv
	$(BIN)/python -m infra.local.run

# ruff (style, complexity <= 15), mypy (strict for domain and storage), the architecture contracts
# (.importlinter), the template's freshness.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --config .importlinter
	$(BIN)/python -m infra.template --check

# The documentation site (docs/, mkdocs.yml) into build/site; --strict: a broken link or anchor fails.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The browser the console's journeys drive: Debian's chromium when we are root (apt), else Playwright's own build.
# The browser tests fail, never skip, when no browser can start (tests/browser/conftest.py).
BROWSER ?= /usr/bin/chromium
browser: venv
	@if [ -x "$(BROWSER)" ]; then echo "browser: $(BROWSER)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; (apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) && echo "browser: installed chromium"; \
	else $(BIN)/python -m playwright install chromium; fi

# Unit, functional, e2e and browser tests (e2e and browser tests start the local stack on free ports).
test: lint docs browser
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10

# The console's journeys in headless Chromium only.
test-browser: browser
	$(BIN)/python -m pytest tests/browser -n 2 -q

# The pure rules only: the inner loop (well under a minute).
test-unit: venv
	$(BIN)/python -m pytest tests/unit -n 2 -q

# Unit and functional tests (the app over in-process moto), no local stack: a few minutes.
test-fast: venv
	$(BIN)/python -m pytest tests/unit tests/functional -n 2 --dist worksteal -q

# Regenerate infra/resources.json from the PynamoDB models and infra/template.py.
template: venv
	$(BIN)/python -m infra.template

# SAM template + deployment.zip in build/ (boto3/botocore stripped: the Lambda runtime has them), sizes printed.
# Needs the package index (Chalice downloads Lambda wheels), no AWS account. Deploy: see docs/operations/deploy.md.
package: venv
	$(BIN)/python -m infra.template --check
	$(BIN)/python -m infra.package --stage $(STAGE) --out build

# Every benchmark in bench/, one after another (about an hour on 2 cores); their output goes into bench/RESULTS.md.
bench: venv
	$(BIN)/python -m bench.run_all

# The same at smoke sizes (minutes): checks that every benchmark still runs, figures not to quote.
bench-quick: venv
	$(BIN)/python -m bench.run_all --quick

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Forget all local data (moto recording and saved keys); the next `make run` starts from the example tenants.
reset-local:
	rm -rf .local
