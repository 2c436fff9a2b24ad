# The two commands of the README. Both set up .venv/ first (idempotent, see scripts/setup.sh).
.PHONY: demo test test-fast setup lint

DEMO_QUESTION ?= Which vector store does ragline use by default, and where does it keep its data?

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/ragline ingest docs
	.venv/bin/ragline ask "$(DEMO_QUESTION)"

test:
	./scripts/setup.sh test
	./scripts/setup-test-tools.sh
	$(MAKE) lint
	.venv/bin/python -m pytest --durations=25

# The inner loop: everything but the tests marked slow (end-to-end runs), no setup, no lint.
test-fast:
	.venv/bin/python -m pytest -m "not slow" --durations=10

# ruff's lint and format checks (configured in pyproject.toml); `make test` runs them first.
lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
