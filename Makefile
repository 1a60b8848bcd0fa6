# The two commands of the README. Both set up what they need first.
# `make test` is what CI runs (.ci/run): lint (ruff, mypy --strict), then the suite;
# it stops at the first failure. The tool variables exist so tests/unit/test_ci.py can
# check that a failing linter fails the target (set on the command line only:
# `=`, not `?=`, so a PYTHON or RUFF in the environment changes nothing).
.PHONY: demo test lint bench

BOOTSTRAP = scripts/bootstrap.sh
PYTHON = .venv/bin/python
RUFF = .venv/bin/ruff
MYPY = .venv/bin/mypy

demo:
	$(BOOTSTRAP) run
	.venv/bin/confide demo

test:
	$(BOOTSTRAP) dev
	$(RUFF) check src tests bench scripts
	$(MYPY) --strict src
	$(PYTHON) -m pytest -n 2 --dist loadfile

lint:
	$(RUFF) check src tests bench scripts
	$(MYPY) --strict src

bench:
	.venv/bin/python bench/echo.py
	.venv/bin/python bench/datapath.py
	.venv/bin/python bench/attest.py
	.venv/bin/python bench/executors.py
	.venv/bin/python bench/inference.py
