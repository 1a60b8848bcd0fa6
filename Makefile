# The two commands of the README. Both set up what they need first.
.PHONY: demo test lint bench

demo:
	scripts/bootstrap.sh run
	.venv/bin/confide demo

test:
	scripts/bootstrap.sh dev
	.venv/bin/python -m pytest -n 2

lint:
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/mypy src

bench:
	.venv/bin/python bench/echo.py
	.venv/bin/python bench/datapath.py
	.venv/bin/python bench/attest.py
	.venv/bin/python bench/executors.py
