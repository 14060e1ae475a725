# ClassPulse: the front door. `make help` lists every target.
PYTHON ?= python3
# One class per kind of demo lesson: presence is read against a class's registered size (6 students, 12 webcams).
CLASS ?= $(if $(filter webcams,$(MODE)),demo-webcams,demo)
FPS ?= 2
VIDEO ?=
CSV ?= $(if $(FER2013_CSV),$(FER2013_CSV),../shared/data/fer2013/fer2013.csv.gz)
PYTEST_ARGS ?=
# `make test`'s pytest workers, each on a local stack of its own (tests/conftest.py); 0 runs the tests in one process.
PYTEST_WORKERS ?= 2
CLASSES ?= 4
STUDENTS ?= 6
SECONDS ?= 120
TOOLS_VENV := .cache/tools-venv
TYPECHECK_VENV := .cache/typecheck-venv
MODEL_RUN ?= emotion-v3-lowres

.DEFAULT_GOAL := help
.PHONY: help client install up down status demo ingest test test-unit test-integration test-e2e train evaluate export data-report deploy-check bench bench-model bench-peers test-faults reliability-report load-report lock audit lint

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: ## Install Python packages, Kafka jars, Redis Stack, Prometheus and the Redis exporter (idempotent)
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -e .
	$(PYTHON) -m pip install -q --no-deps -e clients/python/classpulse-client
	$(PYTHON) -m classpulse_devstack install
	bash deploy/tools/install-kustomize.sh

up: install ## Start Kafka, Redis, Prometheus, the model server and the five services on 127.0.0.1
	$(PYTHON) -m classpulse_devstack up

down: ## Stop everything started by `make up` (data is kept in .run/)
	$(PYTHON) -m classpulse_devstack down

status: ## Show what runs where
	$(PYTHON) -m classpulse_devstack status

demo: install ## Ingest the sample class (or VIDEO=<path> CLASS=<id> FPS=<n> CAMERA=room|gallery; MODE=webcams: students on their own webcams) and print its summary
	$(PYTHON) -m classpulse_demo.run --class $(CLASS) $(if $(MODE),--mode $(MODE)) $(if $(VIDEO),--video $(VIDEO)) $(if $(CAMERA),--camera-kind $(CAMERA)) $(if $(findstring command line,$(origin FPS)),--fps $(FPS))

ingest: ## Publish one source into the running stack: make ingest CLASS=<id> SOURCE=<file|URL|webcam index> FPS=<n> [CAMERA=room|gallery|personal]
	@test -n "$(SOURCE)" || (echo "usage: make ingest CLASS=<id> SOURCE=<file or URL> FPS=<n>" && exit 2)
	$(PYTHON) -m classpulse_ingest publish --class $(CLASS) --source "$(SOURCE)" --fps $(FPS) $(if $(CAMERA),--camera-kind $(CAMERA))

test: install bench-peers $(TOOLS_VENV)/bin/pip-audit ## Run every test: unit, integration, end-to-end, browser and fault drills against real local servers; the 30 slowest listed at the end
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=30 $(PYTEST_ARGS)

test-unit: ## Run the fast unit tests only
	$(PYTHON) -m pytest -m unit $(PYTEST_ARGS)

test-integration: ## Run the integration tests (real Kafka, Redis, model server)
	$(PYTHON) -m pytest -m integration $(PYTEST_ARGS)

test-e2e: ## Run the end-to-end tests (the whole local stack)
	$(PYTHON) -m pytest -m e2e $(PYTEST_ARGS)

train: ## Train the emotion model on FER2013 (CSV=<path>, MODEL_RUN=<config name>; resumes a stopped run)
	$(PYTHON) -m classpulse_training train --config training/configs/$(MODEL_RUN).json --run $(MODEL_RUN) --csv $(CSV) --resume

evaluate: ## Evaluate the exported model on a Kaggle-format CSV: make evaluate CSV=<path>
	$(PYTHON) -m classpulse_training evaluate --csv $(CSV)

export: ## Export the best checkpoint as a versioned SavedModel under models/emotion/
	$(PYTHON) -m classpulse_training export --run $(MODEL_RUN)

deploy-check: ## Render and validate the Kubernetes overlays and the compose file offline
	$(PYTHON) -m pytest -m unit tests/unit/test_deploy_*.py

data-report: ## Write a report on a FER2013 CSV: make data-report CSV=<path>
	$(PYTHON) -m classpulse_training data-report --csv $(CSV) --out docs/data-report

bench-peers: ## Install the `fer` package that the benches compare against (without its PyTorch dependencies)
	$(PYTHON) -m pip install -q --no-deps -r bench/requirements-peers.txt

bench: install bench-peers ## Measure every stage, end to end and growth on an isolated stack, beside fer (bench/results/)
	$(PYTHON) -m classpulse_bench --out bench/results

bench-model: install bench-peers ## This emotion model vs the fer package's on PublicTest (CSV=<path>): accuracy, F1, faces/s; class shares read from generated classes
	$(PYTHON) -m classpulse_bench model --csv $(CSV) --out bench/results
	$(PYTHON) -m classpulse_bench shares --csv $(CSV) --out bench/results

test-faults: ## Run the fault, hostile-input and load tests (pytest marker faults), the drills at full load too, on an isolated stack of their own
	$(PYTHON) -m pytest -m faults --full-load $(PYTEST_ARGS)

reliability-report: install ## Every fault drill on one class and at full load, ingest's memory under an upload flood, a 15-minute soak, the hostile inputs; writes docs/reliability-report.md
	$(PYTHON) -m classpulse_reliability faults --out docs/reliability-report.md
	$(PYTHON) -m classpulse_reliability faults --profile full-load --out docs/reliability-report.md
	$(PYTHON) -m classpulse_reliability flood --out docs/reliability-report.md
	$(PYTHON) -m classpulse_reliability soak --minutes 15 --out docs/reliability-report.md
	$(PYTHON) -m classpulse_reliability hostile --count 60 --out docs/reliability-report.md

load-report: install ## Simulated classes on an isolated stack: make load-report CLASSES=4 STUDENTS=6 FPS=2 SECONDS=120
	$(PYTHON) -m classpulse_reliability load --classes $(CLASSES) --students $(STUDENTS) --fps $(FPS) --seconds $(SECONDS) --out docs/load-report.md

$(TOOLS_VENV)/bin/pip-audit: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install -q -r requirements-tools.txt
	touch $@

# mypy runs in an environment of its own that also sees the project's installed packages (a .pth file naming the
# site-packages of $(PYTHON)): it reads stub packages and runs its pydantic plugin from the environment it runs in.
$(TYPECHECK_VENV)/bin/mypy: requirements-typecheck.txt
	$(PYTHON) -m venv $(TYPECHECK_VENV)
	$(PYTHON) -c 'import site; print("\n".join(dict.fromkeys(site.getsitepackages())))' \
		> "$$($(TYPECHECK_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/classpulse-project.pth"
	$(TYPECHECK_VENV)/bin/pip install -q -r requirements-typecheck.txt
	touch $@

lint: $(TOOLS_VENV)/bin/pip-audit $(TYPECHECK_VENV)/bin/mypy ## ruff, mypy (strict on services/) and what may import what (import-linter); needs `make install`
	$(TOOLS_VENV)/bin/ruff check .
	$(TYPECHECK_VENV)/bin/mypy
	lint-imports --no-cache

client: $(TOOLS_VENV)/bin/pip-audit ## Regenerate the Python client (clients/python/) from the API's OpenAPI document
	$(PYTHON) -m classpulse_api.openapi_document --out clients/python/openapi.json
	PATH=$(abspath $(TOOLS_VENV))/bin:$$PATH openapi-python-client generate --path clients/python/openapi.json \
		--config clients/python/generator.yaml --output-path clients/python/classpulse-client --meta setup --overwrite
	rm -rf clients/python/classpulse-client/.ruff_cache

lock: $(TOOLS_VENV)/bin/pip-audit ## Resolve requirements.txt into requirements.lock, then each image's part of it (deploy/docker/*/*.lock)
	$(TOOLS_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header \
		--no-emit-find-links --output-file requirements.lock requirements.txt
	$(PYTHON) deploy/tools/image_locks.py --pip-compile $(TOOLS_VENV)/bin/pip-compile

audit: $(TOOLS_VENV)/bin/pip-audit ## Known vulnerabilities of every package in requirements.lock and the images' locks (pip-audit, PyPI advisories)
	$(PYTHON) -m classpulse_reliability.audit --lock requirements.lock deploy/docker/*/*.lock --pip-audit $(TOOLS_VENV)/bin/pip-audit
