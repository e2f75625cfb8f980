# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install test check lint serve layer synth deploy destroy bench clean

$(STAMP): requirements.txt pyproject.toml package.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e ".[cli,networks]"
	npm ci --no-audit --no-fund --silent
	touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

check: lint test

# The API on http://127.0.0.1:$(PORT) over demo models published into a moto S3 server on
# 127.0.0.1:$(MOTO_PORT). STORE=path serves a local folder store instead (demo models are
# published into it when it has no registry); BUCKET=name serves a real bucket as it is.
PORT ?= 8000
MOTO_PORT ?= 5555
serve: install
	$(PY) -m tickerserve.cli.dev --port $(PORT) --moto-port $(MOTO_PORT) \
		$(if $(STORE),--store "$(STORE)") $(if $(BUCKET),--bucket "$(BUCKET)")

# The Lambda dependency layer (pip for the Lambda platform, no Docker), cached under build/.
ARCH ?= x86_64
layer: install
	$(PY) -m infra.bundling $(ARCH)

# CloudFormation templates in cdk.out/; needs no network once installed and the layer is cached.
STAGE ?= dev
synth: install
	npx cdk synth --quiet -c tickerserve:stage=$(STAGE)

# A real deployment with the current AWS credentials (AWS_PROFILE / AWS_REGION):
#   cdk bootstrap  once per account and region (idempotent: a no-op when already done)
#   cdk deploy     the storage stack (bucket, retained) then the serving stack
# e.g. `make deploy STAGE=prod`; outputs (API URL, function, bucket) land in cdk-outputs.json.
deploy: install
	npx cdk bootstrap
	npx cdk deploy --all -c tickerserve:stage=$(STAGE) --require-approval broadening \
		--outputs-file cdk-outputs.json

# Deletes the stage's stacks (asks first; FORCE=1 does not). The model bucket and its access-log
# bucket are retained on purpose: `aws s3 rb s3://NAME --force` once the models can go.
destroy: install
	npx cdk destroy --all -c tickerserve:stage=$(STAGE) $(if $(FORCE),--force)

# Speed and memory vs a seed-style baseline; prints tables (see bench/README.md).
bench: install
	$(PY) bench/run.py

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache cdk-outputs.json
