# DistLab: `make run` serves the labs at http://127.0.0.1:8000/, `make test` runs the test suite.
# Both install what is missing first (Debian packages, .venv with the pinned requirements).
.PHONY: run test services stop setup lint bench

run:
	bin/dev run

test:
	bin/dev test

services:
	bin/dev services

stop:
	bin/dev stop

setup:
	bin/setup

lint:
	bin/setup && .venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	bin/dev bench
