# gbrowse_aws: `make demo` and `make test` each set themselves up first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
# Heavy, reusable set-up (ansible-test's copy of the collection, test-host
# root filesystems) lives outside the repo and survives a fresh clone.
CACHE ?= $(HOME)/.cache/gbrowse_aws
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup demo test unit system sanity lint clean
setup:
	@hacking/setup

demo: setup
	$(PY) demo/demo.py
	$(PY) demo/gbrowse_demo.py
	$(PY) hacking/sync-demo

test: setup
	@hacking/run-tests

unit: setup
	$(PY) -m pytest -q tests/unit

system: setup
	$(PY) -m pytest -q -n 2 --dist loadfile tests/system

sanity: setup
	@CACHE=$(CACHE) hacking/sanity

lint: setup
	@hacking/lint

clean:
	rm -rf $(VENV) tests/output .pytest_cache
