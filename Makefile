# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install test check lint serve layer synth deploy destroy e2e bench clean

# Each step says what it installs; pip's output is condensed to a few progress lines a minute
# (tools/install_progress.py), npm prints one summary line.
SAY := @echo "[make install]"
$(STAMP): requirements.txt pyproject.toml package.json
	$(SAY) "Python packages into $(VENV) and the pinned CDK CLI into node_modules/ (a few minutes the first time)"
	@test -x $(PY) || { echo "[make install] creating $(VENV) with $(PYTHON)" && $(PYTHON) -m venv $(VENV); }
	@$(PY) tools/install_progress.py --step "pip: upgrading pip itself" -- \
		$(PY) -m pip install --progress-bar off --upgrade pip
	@$(PY) tools/install_progress.py --step "pip: requirements.txt and tickerserve[cli,networks] (about 150 packages, torch CPU among them)" -- \
		$(PY) -m pip install --progress-bar off -r requirements.txt -e ".[cli,networks]"
	$(SAY) "npm: the AWS CDK CLI pinned in package.json"
	@npm ci --no-audit --no-fund
	@touch $@
	$(SAY) "done"

install: $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

check: lint test

# The API on http://127.0.0.1:$(PORT) over demo models published into a moto S3 server on
# 127.0.0.1:$(MOTO_PORT). The bucket is kept in .serve/bucket/ between runs (FRESH=1 starts
# clean). STORE=path serves a local folder store instead (demo models are published into it
# when it has no registry); BUCKET=name serves a real bucket as it is.
PORT ?= 8000
MOTO_PORT ?= 5555
serve: install
	@$(PY) -m tickerserve.cli.dev --port $(PORT) --moto-port $(MOTO_PORT) $(if $(FRESH),--fresh) \
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

# The whole loop against a throw-away stage (e2e-<id>) in the account of your AWS credentials:
# deploy, publish -> promote -> predict and batch -> outcomes -> capture bucket and Athena ->
# the scheduled monitor -> rollback -> alarms, then destroy it all (KEEP=1 leaves it). Without
# credentials it says so and exits 0; make test runs the same loop locally (tests/e2e).
e2e: install
	@$(PY) -m tests.e2e $(if $(KEEP),--keep)

# Speed and memory vs a seed-style baseline; prints tables (see bench/README.md).
bench: install
	$(PY) bench/run.py

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache cdk-outputs.json
