# The two commands of the README. Both set up .venv/ first (idempotent, see scripts/setup.sh).
.PHONY: demo test setup

DEMO_QUESTION ?= Which vector store does ragline use by default, and where does it keep its data?

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/ragline ingest docs
	.venv/bin/ragline ask "$(DEMO_QUESTION)"

test:
	./scripts/setup.sh test
	./scripts/setup-test-tools.sh
	.venv/bin/python -m pytest
