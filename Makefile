# Every target installs what it needs first; nothing but Python 3.11 and make is assumed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_YES := 1
export PIPENV_NOSPIN := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
export PYTHONPATH := $(CURDIR):$(CURDIR)/api_service
PIPENV := python3 -m pipenv
PORT ?= 8000
# PostgreSQL when one answers on 127.0.0.1:5432 (as in CI), else SQLite.
FMA_TEST_DATABASE ?= $(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgres || echo sqlite)
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install run demo migrate test test-postgres test-sqlite test-and-coverage lint fma-django-compile bench bench-cold-start clean \
	lambda-package sam-install sam-build-local sam-build-remote sam-local build-ApiFunction build-AggregatorFunction build-DeployFunction \
	checkov-install checkov terraform-validate frameworks-install

# Each target installs only what it needs, by Pipfile category: serving (`make run`) the [packages];
# `make demo` adds [demo] (scikit-learn, matplotlib, the client's requests and tqdm); tests and lint add
# [dev-packages] (moto, schemathesis, Playwright, mypy, cfn-lint, pre-commit...) and the demo, which the
# suite runs. A stamp per set; a new Pipfile.lock reinstalls.
INSTALLED_SERVE := $(VENV)/.installed-serve
INSTALLED_DEMO := $(VENV)/.installed-demo
INSTALLED_DEV := $(VENV)/.installed-dev

# $(call install_categories,<Pipfile categories>)
# What `pipenv sync --categories` does (the locked versions, hash-checked, no resolution), through pip itself:
# pipenv sync prints nothing while pip works (a minute or more on a fresh clone), or, verbose, every hash.
# --no-compile: Python compiles each module when it is first imported, so serving waits only for what it imports.
define install_categories
	@python3 -m pipenv --version >/dev/null 2>&1 || { echo "Installing pipenv..."; python3 -m pip install --quiet pipenv; }
	@test -x $(PY) || { echo "Creating $(VENV)..."; python3 -m venv $(VENV); }
	@echo "Installing the locked [$(1)] packages into $(VENV)..."
	$(PIPENV) requirements --hash --categories "$(1)" > $@.txt
	$(PY) -m pip install --require-hashes --no-deps --no-compile --progress-bar on -r $@.txt
	@touch $@
endef

install: $(INSTALLED_DEV)

$(INSTALLED_SERVE): Pipfile.lock
	$(call install_categories,packages)

$(INSTALLED_DEMO): Pipfile.lock
	$(call install_categories,packages demo)

$(INSTALLED_DEV): Pipfile.lock
	$(call install_categories,packages dev-packages demo)

migrate: $(INSTALLED_SERVE)
	cd api_service && ../$(PY) manage.py migrate --no-input

run: migrate
	$(PY) api_service/local_server.py --port $(PORT)

# Federated learning through fma_client (clients/python): the service of `make run` when it answers on PORT,
# else one started for the demo. DEMO_ARGS="--rounds 20 --aggregator median" for more (README).
demo: $(INSTALLED_DEMO)
	PYTHONPATH=$(PYTHONPATH):$(CURDIR)/clients/python $(PY) -m fma_client.demo --url http://127.0.0.1:$(PORT)/ \
		--password-file .local/admin_password --start-server api_service/local_server.py \
		--plot build/demo-accuracy.png $(DEMO_ARGS)

test: install
	FMA_TEST_DATABASE=$(FMA_TEST_DATABASE) $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: install
	FMA_TEST_DATABASE=postgres $(PY) -m pytest $(PYTEST_ARGS)

test-sqlite: install
	FMA_TEST_DATABASE=sqlite $(PY) -m pytest $(PYTEST_ARGS)

test-and-coverage: install
	FMA_TEST_DATABASE=$(FMA_TEST_DATABASE) $(PY) -m pytest --cov --cov-report=term-missing --cov-report=html $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/pre-commit run --all-files

fma-django-compile: $(INSTALLED_SERVE)
	rm -f artifacts/fma_django_connectors-*.whl
	$(PY) -m pip wheel --no-deps --wheel-dir artifacts ./fma_django_connectors

bench: install
	$(PY) bench/aggregate.py

# Cold start of the built artifact under the runtime's Python (docs/deploy.md has the numbers).
bench-cold-start: lambda-package
	$(PY) bench/cold_start.py $(LAMBDA_ZIP)

# --- Lambda artifact, SAM and Terraform (docs/deploy.md) ---------------------------------------
# The artifact holds api_service/, the fma_django_connectors wheel (with fma_core), the collected
# static files and wheels of the locked dependencies built for the Lambda runtime below, whatever
# Python and platform run the build.
# python3.12 runs on Amazon Linux 2023 (glibc 2.34): the locked numpy ships manylinux_2_28 wheels only,
# which python3.11's Amazon Linux 2 (glibc 2.26) cannot load. Keep in step with Runtime in template.yaml
# and lambda_runtime in terraform_deploy/variables.tf.
LAMBDA_PYTHON_VERSION := 3.12
LAMBDA_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
LAMBDA_BUILD_DIR := build/lambda
LAMBDA_ZIP := artifacts/fma-lambda.zip
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
FRAMEWORKS_VENV := .venv-frameworks
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins $(HOME)/.terraform.d/plugins))

# Bytecode is compiled by the runtime's own Python (the .pyc format changes with each minor version):
# pyenv's or the PATH's python3.12, the first that runs (pyenv's shims may refuse).
LAMBDA_PYTHON ?= $(shell for candidate in $(wildcard $(HOME)/.pyenv/versions/$(LAMBDA_PYTHON_VERSION).*/bin/python$(LAMBDA_PYTHON_VERSION)) \
	$$(command -v python$(LAMBDA_PYTHON_VERSION)); do "$$candidate" -c pass 2>/dev/null && { echo "$$candidate"; break; }; done)
# The AWS services the code builds boto3 clients for (fma_core/aws.py callers); botocore's models of
# the other ~440 services are left out. tests/deploy/test_artifact.py checks the code calls no other.
LAMBDA_BOTOCORE_SERVICES := lambda s3 secretsmanager scheduler events sts
# Downloaded wheels are kept here between builds (`make clean` removes them).
PIP_CACHE := build/pip-cache

# $(call lambda_artifact,<empty or new folder>)
# After installing: leave out what Lambda never reads (tests, type stubs, gettext sources, console
# scripts, botocore models of unused services), then precompile everything with hash-based .pyc:
# zip keeps file times only to 2 s, so timestamp-based .pyc would be judged stale after the zip round
# trip and recompiled in memory on every cold start (/var/task is read-only); unchecked-hash .pyc are
# used as they are, without reading the source.
define lambda_artifact
	@test -n "$(LAMBDA_PYTHON)" || { echo "python$(LAMBDA_PYTHON_VERSION) (the Lambda runtime's Python) is needed to \
	compile the artifact's bytecode: install it (e.g. pyenv install $(LAMBDA_PYTHON_VERSION)) or set LAMBDA_PYTHON" >&2; exit 1; }
	$(PIPENV) requirements > build/requirements-lambda.txt
	$(PY) -m pip install --quiet --no-compile --cache-dir "$(CURDIR)/$(PIP_CACHE)" --target "$(1)" --implementation cp \
		--python-version $(LAMBDA_PYTHON_VERSION) $(LAMBDA_PLATFORMS) --only-binary=:all: \
		-r build/requirements-lambda.txt artifacts/fma_django_connectors-*.whl
	rsync -a --exclude __pycache__ --exclude staticfiles --exclude local_server.py --exclude local_http.py api_service/ "$(1)/"
	FMA_STATIC_ROOT="$(abspath $(1))/staticfiles" $(PY) api_service/manage.py collectstatic --no-input -v 0 \
		--settings=federated_learning_project.settings_static
	rm -rf "$(1)/bin"
	# Served from staticfiles once collected: the sidecar's own copy of the API docs' assets, and every
	# source map (read only by a browser's developer tools), would only weigh on the zip's 50 MB limit.
	rm -rf "$(1)/drf_spectacular_sidecar/static"
	find "$(1)" -type f \( -name '*.map' -o -name '*.map.gz' -o -name '*.map.br' \) -delete
	find "$(1)" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
	find "$(1)" -type f \( -name '*.pyi' -o -name '*.po' \) -delete
	find "$(1)/botocore/data" -mindepth 1 -maxdepth 1 -type d \
		$(foreach service,$(LAMBDA_BOTOCORE_SERVICES),-not -name $(service)) -exec rm -rf {} +
	$(LAMBDA_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)"
endef

$(LAMBDA_ZIP): fma-django-compile
	mkdir -p build && rm -rf $(LAMBDA_BUILD_DIR) $(LAMBDA_ZIP)
	$(call lambda_artifact,$(LAMBDA_BUILD_DIR))
	cd $(LAMBDA_BUILD_DIR) && zip -q -r -X $(CURDIR)/$(LAMBDA_ZIP) .

# The zip that terraform_deploy/ uploads (variable lambda_zip_path).
lambda-package: $(LAMBDA_ZIP)

# SAM calls these (BuildMethod: makefile) with ARTIFACTS_DIR set; the functions share one artifact.
build-ApiFunction build-AggregatorFunction build-DeployFunction: fma-django-compile
	mkdir -p build
	$(call lambda_artifact,$(ARTIFACTS_DIR))

# aws-sam-cli gets its own virtualenv: its pins would clash with the project's.
sam-install: $(SAM)

$(SAM):
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet "aws-sam-cli~=1.170"

# One artifact serves both: the template parameter Settings picks settings_local or settings_remote.
# --build-in-source: the Makefile builds from the checkout (its virtualenv, the wheel), and SAM does
# not copy the tree, virtualenvs included, to a scratch folder first.
sam-build-local: $(SAM)
	$(SAM) build --build-in-source --config-env local

sam-build-remote: $(SAM)
	$(SAM) validate --lint
	$(SAM) build --build-in-source

# Needs Docker (sam runs the function in a container); without it use `make run`.
sam-local: sam-build-local
	$(SAM) local start-api --config-env local --port $(PORT)

# checkov pins old boto3 and replaces python-hcl2's module: it lives in its own virtualenv.
checkov-install: $(CHECKOV_VENV)/bin/checkov

$(CHECKOV_VENV)/bin/checkov:
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov~=3.3"

# PyTorch (its CPU build: `torch==2.13.0` is the file this machine's pip finds on disk; PyPI's default build
# brings several GB of CUDA libraries) and Keras on its torch backend, for the SDK's round-trip tests: their
# own virtualenv, with the client's other requirements (~1.1 GB, a few minutes the first time).
frameworks-install: $(FRAMEWORKS_VENV)/.installed

$(FRAMEWORKS_VENV)/.installed: clients/python/pyproject.toml
	python3 -m venv $(FRAMEWORKS_VENV)
	$(FRAMEWORKS_VENV)/bin/pip install --quiet "torch==2.13.0" "./clients/python[torch,keras]"
	touch $@

checkov: checkov-install
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -d terraform_deploy --framework terraform --compact --quiet

terraform-validate:
	cd terraform_deploy && CHECKPOINT_DISABLE=1 terraform init -backend=false -input=false \
		$(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR)) && terraform validate

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) artifacts build .pytest_cache .ruff_cache htmlcov .coverage
