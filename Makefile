# The two set-up commands of the README: `make synth` and `make test`. Everything is pinned:
# Python packages in requirements*.txt (installed into .venv), the cdktf CLI in package-lock.json.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The synth command of cdktf.json's "app", for the targets below that synthesize without the cdktf CLI.
SYNTH := $(PY) -O main.py
# checkov has its own venv: its exact boto3 pin conflicts with the one moto needs (docs/security.md).
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
export ML_PLATFORM_CHECKOV ?= $(CURDIR)/$(CHECKOV_VENV)/bin/checkov

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CHECKPOINT_DISABLE := 1
# Offline Terraform provider mirror used by the validate/emulator tests; found on the machine
# when unset (see README, "What runs offline").
ML_PLATFORM_TF_MIRROR ?= $(shell find / -maxdepth 4 -type d -path '*tf-plugins' 2>/dev/null | head -n 1)
export ML_PLATFORM_TF_MIRROR

.PHONY: install synth test test-fast lint typecheck format bench check-config compare-synth diff deploy destroy clean checkov scan drift rehearse cost

# The app runs with `python -O` (cdktf.json, $(SYNTH)): that skips the runtime type checks of the jsii bindings,
# about a third of a second per synth; the test suite runs without -O, so they still check every call there.
# pip writes bytecode for plain `python` only, so the -O bytecode is compiled here, once; without it each synth
# would compile the provider modules it imports (docs/performance.md).
$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -O -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip==25.3
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

checkov: $(CHECKOV_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(PY_STAMP) $(NODE_STAMP)

## Install everything pinned, then synthesize every environment with the cdktf CLI.
synth: install
	node_modules/.bin/cdktf synth

## Lint and type checks, then the whole test suite, including the emulator deploy test and the GitOps emulator tests
## (about 6 minutes 45 seconds on 2 cores).
## One pytest worker per core and one more: the emulator tests spend most of their time waiting on the AWS provider
## (the deploy test alone about 4 minutes 45 seconds), so with one worker per core a core would idle meanwhile
## (8 minutes with 2 workers here). --no-loadscope-reorder keeps the file order of tests/conftest.py (longest first);
## xdist's default orders files by their number of tests instead.
test: lint $(CHECKOV_STAMP)
	$(PY) -m pytest -n $$(( $$(nproc) + 1 )) --dist loadfile --no-loadscope-reorder

## The unit suite only: no AWS emulator, no terraform binary, no checkov (make test runs those gates too). One worker
## per core, whole files per worker (each worker synthesizes the session's stacks once): 52 s instead of 77 s on 2 cores.
test-fast: $(PY_STAMP)
	$(PY) -m pytest -m "not slow and not terraform and not scanner" -n auto --dist loadfile

## Validate the matrix, the ML_PLATFORM_OVERRIDES(_FILE) overrides and the deployment settings without a synth.
check-config: $(PY_STAMP)
	$(PY) -m stacks.check_config

## Synthesize every scenario here and at BASE (a git revision) and compare the JSON byte for byte.
BASE ?= HEAD
compare-synth: $(PY_STAMP)
	$(PY) tools/compare_synth.py --base $(BASE)

## Synthesize, then run the checkov gate on every stack: any failed check not accepted for that environment and
## resource in checkov-accepted.toml fails, and so does an acceptance that no longer matches (the same gate as the tests).
## ML_PLATFORM_OVERRIDES_FILE reaches both commands: the gate scans that file's scenario
## (ML_PLATFORM_OVERRIDES_FILE=examples/model-serving.json make scan).
scan: $(PY_STAMP) $(CHECKOV_STAMP)
	$(SYNTH)
	$(PY) tools/checkov_gate.py --out "$${CDKTF_OUTDIR:-cdktf.out}"

## ruff (lint and format) on everything, mypy on constructs/, stacks/ and main.py.
lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/typecheck.py

typecheck: $(PY_STAMP)
	$(PY) tools/typecheck.py

format: $(PY_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Cold synth of every stack against the floor (loading cdktf and the provider assemblies only): medians, ratio, peak
## memory, jsii round trips, resources per stack; appended to bench/history.jsonl (docs/performance.md).
## BENCH_ARGS passes options, e.g. BENCH_ARGS="--parallel 2" also times the stacks split between two processes.
bench: $(PY_STAMP)
	$(PY) bench/synth.py $(BENCH_ARGS)

## Synthesize, then print the monthly cost estimate of every stack from the dated price table (docs/costs.md).
## Exits 2 when an instance type, region or count cannot be priced (nothing is ever priced at zero).
cost: $(PY_STAMP)
	$(SYNTH)
	$(PY) -m costs --out "$${CDKTF_OUTDIR:-cdktf.out}"

ENV ?= dev
diff: install
	node_modules/.bin/cdktf diff $(ENV)
deploy: install
	node_modules/.bin/cdktf deploy $(ENV)
destroy: install
	node_modules/.bin/cdktf destroy $(ENV)

## Drift check of one environment (docs/gitops.md): refresh-only plan (changes made outside Terraform) and plan (code
## not yet applied) of the synthesized stack, with its real backend and your AWS credentials. Exit 0 clean, 2 drift,
## 3 code not yet applied, 1 error. Synthesize first (make synth).
drift: $(PY_STAMP)
	$(PY) -m gitops.drift $(ENV) --init

## Rehearse one environment's deploy on a local AWS emulator: synthesize, apply its AWS part with the pinned terraform,
## check the second plan is clean and there is no drift, destroy. KEEP=1 leaves it up (with AWS CLI settings) until Ctrl-C.
rehearse: $(PY_STAMP)
	$(PY) -m gitops.rehearse $(ENV) $(if $(KEEP),--keep)

clean:
	rm -rf cdktf.out .pytest_cache .mypy_cache
