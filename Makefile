# botfleet — every operator and developer command. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first of these that is Python >= 3.11 (Ubuntu 22.04's python3 is 3.10: python3.11 there).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done),python3)
endif
VENV   ?= .venv
# `make test` runs the suite in parallel pytest-xdist workers (tests/conftest.py says which tests
# share a worker); TEST_WORKERS=1 runs it in this process, as plain pytest does.
TEST_WORKERS ?= 3
PYTEST_ARGS ?= $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Exports DATABASE_URL/REDIS_URL of servers that answer (starting throwaway ones when needed).
SERVICES := services_env="$$(scripts/services.sh up)" && eval "$$services_env"
# Exports DOCKER_HOST of an engine that answers (starting dockerd and building the client image
# when needed; installs docker.io, debootstrap and docker-compose when missing).
DOCKER_ENGINE := docker_env="$$(scripts/docker_engine.sh up)" && eval "$$docker_env"
# Operator targets use the servers named in .env (a VPS) or in the environment; only where
# neither says anything (a development machine) the throwaway servers above.
OPS_ENV := if [ -f .env ] || [ -n "$${DATABASE_URL:-}" ]; then :; else $(SERVICES); fi
# Without .env, the master settings of the sandbox `make run` started (its deploy backend), so
# `make stats`/`make logs` see its bots.
SANDBOX_MASTER_ENV := { sandbox_env="$${BOTFLEET_RUN_DIR:-/tmp/botfleet-run-$$(id -u)}/master.env"; \
	if [ ! -f .env ] && [ -f "$$sandbox_env" ]; then set -a && . "$$sandbox_env" && set +a; fi; }
# Exports BOTFLEET_CHROMIUM: Debian's chromium for the browser tests (installed when missing).
BROWSER := browser_env="$$(scripts/browser.sh up)" && eval "$$browser_env"
# Exports BOTFLEET_CADDY: Debian's caddy for the webhook tests (installed when missing).
CADDY := caddy_env="$$(scripts/caddy.sh up)" && eval "$$caddy_env"
# docker compose v2 when installed, else docker-compose v1; project name fixed (volume names).
PROJECT := botfleet
# TRIAL=1: docker-compose.trial.yml too (the Telegram emulator and the YooKassa fake as services).
COMPOSE_FILES = $(if $(TRIAL),-f docker-compose.yml -f docker-compose.trial.yml)
COMPOSE = $(if $(shell docker compose version >/dev/null 2>&1 && echo v2),docker compose,docker-compose) \
	-p $(PROJECT) $(COMPOSE_FILES)
# Seconds `make up` waits for every service to be healthy (scripts/stack.sh wait).
UP_TIMEOUT ?= 300
# Images of this checkout, tagged <version>-<commit> (scripts/stack.sh tag): the releases
# `make rollback` goes back through. Set PLATFORM_IMAGE / CLIENT_IMAGE to use others.
TAG := $(shell scripts/stack.sh tag 2>/dev/null || echo unknown)
PLATFORM_IMAGE ?= botfleet-platform:$(TAG)
CLIENT_IMAGE ?= botfleet-client:$(TAG)
# The group of the Docker socket (DOCKER_SOCKET in the environment when not the default one,
# e.g. rootless Docker; compose mounts the same), for the master's group_add.
DOCKER_GID = $$(stat -c %g "$${DOCKER_SOCKET:-/var/run/docker.sock}" 2>/dev/null || echo 999)

BACKUPS_DIR ?= backups
BACKUP_KEEP ?= 14
INTO ?= scratch
LINES ?= 200

.PHONY: help install run test lint typecheck migrate migrate-dry-run services-up services-down i18n bench clean \
	up down logs stats db-backup db-restore db-check redis-cli redis-keys import-legacy rotate-keys \
	docker-up docker-down image env secret rollback upgrade uninstall redis-restore

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "botfleet needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
		echo "python3-venv is missing; installing it"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
		else sudo -n apt-get install -y -qq python3-venv; fi && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install botfleet with pinned dependencies

env: install ## write .env from .env.example with new passwords, ENCRYPTION_KEYS and API tokens (never replaces one)
	@$(PY) -m scripts.init_env

secret: install ## print a new Fernet key for ENCRYPTION_KEYS
	@$(PY) -m core.secrets

run: install ## run the platform: sandbox (emulated Telegram + YooKassa) unless .env has real credentials
	@$(OPS_ENV) && { [ "$${SANDBOX_BACKEND:-}" = process ] || docker_env="$$(scripts/docker_engine.sh up)" \
		&& eval "$$docker_env" || echo "no Docker Engine: client bots run as processes"; } && \
		$(PY) -m scripts.migrate && $(PY) -m scripts.sandbox

test: install ## run the whole test suite against real PostgreSQL, Redis and a Docker Engine
	@$(SERVICES) && $(DOCKER_ENGINE) && $(BROWSER) && $(CADDY) && $(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff (lint + format check), mypy and the import contracts (.importlinter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache

typecheck: install ## mypy only
	$(VENV)/bin/mypy .

migrate: install ## apply control + tenant migrations (.env/DATABASE_URL, else the local throwaway server)
	@$(OPS_ENV) && $(PY) -m scripts.migrate

migrate-dry-run: install ## list pending migrations without applying them
	@$(OPS_ENV) && $(PY) -m scripts.migrate --dry-run

up: ## build and start the platform with docker compose, wait until healthy (OFFLINE=1: images built here; TRIAL=1: with emulated Telegram + YooKassa)
	@test -f .env || { echo "no .env: make env (or cp .env.example .env and fill it in; docs/operations.md)"; exit 1; }
ifdef OFFLINE
	@# Every image built here by scripts/docker_engine.sh (postgres/redis stand-ins included).
	@stack_env="$$(BOTFLEET_PLATFORM_IMAGE=$(PLATFORM_IMAGE) BOTFLEET_CLIENT_IMAGE=$(CLIENT_IMAGE) \
			scripts/docker_engine.sh stack)" && eval "$$stack_env" && \
		export PLATFORM_IMAGE="$$BOTFLEET_PLATFORM_IMAGE" CLIENT_IMAGE="$$BOTFLEET_CLIENT_IMAGE" \
			POSTGRES_IMAGE="$$BOTFLEET_POSTGRES_IMAGE" REDIS_IMAGE="$$BOTFLEET_REDIS_IMAGE" && \
		echo "images: $$PLATFORM_IMAGE $$CLIENT_IMAGE $$POSTGRES_IMAGE $$REDIS_IMAGE" && \
		DOCKER_GID=$(DOCKER_GID) $(COMPOSE) up -d --no-build --remove-orphans && \
		STACK_COMPOSE="$(COMPOSE)" STACK_PROJECT=$(PROJECT) scripts/stack.sh wait $(UP_TIMEOUT) && \
		scripts/stack.sh record $(TAG)
else
	@# BuildKit for the Dockerfiles' secret mounts: compose v1 (Debian 12) builds with the docker
	@# CLI only when told (COMPOSE_DOCKER_CLI_BUILD); a 20.10 CLI needs DOCKER_BUILDKIT=1.
	@export PLATFORM_IMAGE=$(PLATFORM_IMAGE) CLIENT_IMAGE=$(CLIENT_IMAGE) && \
		echo "images: $$PLATFORM_IMAGE $$CLIENT_IMAGE" && \
		DOCKER_GID=$(DOCKER_GID) COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 \
			$(COMPOSE) up -d --build --remove-orphans && \
		STACK_COMPOSE="$(COMPOSE)" STACK_PROJECT=$(PROJECT) scripts/stack.sh wait $(UP_TIMEOUT) && \
		scripts/stack.sh record $(TAG)
endif
	@$(COMPOSE) ps
	@$(if $(TRIAL),STACK_COMPOSE="$(COMPOSE)" scripts/stack.sh trial-help)

upgrade: install ## roll a client image over every bot and hub in health-gated batches with a progress bar: IMAGE=... [NO_MIGRATE=1], or ACTION=follow|pause|resume|rollback
	@if [ -n "$(ACTION)" ]; then $(PY) -m scripts.upgrade --$(ACTION); \
	else test -n "$(IMAGE)" || { echo "usage: make upgrade IMAGE=botfleet-client:<tag> [NO_MIGRATE=1] (or ACTION=follow|pause|resume|rollback)"; exit 2; }; \
	$(PY) -m scripts.upgrade "$(IMAGE)" $(if $(NO_MIGRATE),--no-migrate); fi

rollback: ## run the previous release's images again (.botfleet/releases); client bots follow in batches
	@test -f .env || { echo "no .env"; exit 1; }
	@release="$$(scripts/stack.sh previous)" && set -- $$release && \
		export PLATFORM_IMAGE="$$2" CLIENT_IMAGE="$$3" && \
		if [ "$$4" != - ]; then export POSTGRES_IMAGE="$$4"; fi && \
		if [ "$$5" != - ]; then export REDIS_IMAGE="$$5"; fi && \
		echo "rolling back to release $$1: $$PLATFORM_IMAGE $$CLIENT_IMAGE" && \
		DOCKER_GID=$(DOCKER_GID) $(COMPOSE) up -d --no-build --remove-orphans && \
		STACK_COMPOSE="$(COMPOSE)" STACK_PROJECT=$(PROJECT) scripts/stack.sh wait $(UP_TIMEOUT) && \
		scripts/stack.sh record "$$1" && \
		echo "the master now re-deploys the client bots onto $$CLIENT_IMAGE in batches (make logs FOLLOW=1)"

down: ## stop the master, then this fleet's client-bot containers, then the stack (volumes and data stay)
	@# The master first: it would start the bots again while they stop. Then only the client bots
	@# of this fleet (label botfleet.fleet=FLEET_NAME, from the environment, else .env, else
	@# botfleet): another fleet on the same engine is not ours to stop.
	$(COMPOSE) stop master
	@fleet="$${FLEET_NAME:-$$(sed -n 's/^FLEET_NAME=//p' .env 2>/dev/null | tail -n 1)}"; \
		fleet="$${fleet:-botfleet}"; \
		ids=$$(docker ps -q --filter label=botfleet.managed=true --filter "label=botfleet.fleet=$$fleet" 2>/dev/null); \
		if [ -n "$$ids" ]; then echo "stopping the client bots of fleet $$fleet"; docker stop $$ids >/dev/null; fi
	$(COMPOSE) down --remove-orphans

uninstall: ## remove this fleet: its bots (label botfleet.fleet), the compose project; YES=1: its volumes and images too
	@STACK_COMPOSE="$(COMPOSE)" STACK_PROJECT=$(PROJECT) YES=$(YES) scripts/stack.sh uninstall

redis-restore: ## replace Redis's data with FILE=backups/redis-<stamp>.rdb (YES=1; stops master, sales, redis meanwhile)
	@STACK_COMPOSE="$(COMPOSE)" STACK_PROJECT=$(PROJECT) YES=$(YES) scripts/stack.sh redis-restore "$(FILE)"

logs: install ## platform logs, or one bot's with TENANT=client_001 (LINES=200, FOLLOW=1)
	@if [ -n "$(TENANT)" ]; then $(SANDBOX_MASTER_ENV) && $(PY) -m scripts.logs $(TENANT) --lines $(LINES) $(if $(FOLLOW),--follow); \
	else $(COMPOSE) logs --tail=$(LINES) $(if $(FOLLOW),--follow); fi

stats: install ## fleet statistics: tenants, expiries, payments, per-tenant numbers (ARGS=--json)
	@$(OPS_ENV) && $(SANDBOX_MASTER_ENV) && $(PY) -m scripts.stats $(ARGS)

db-backup: install ## pg_dump the database (+ roles) and a Redis RDB into backups/, or one tenant: TENANT=client_001 (BACKUP_KEEP=14)
	@$(OPS_ENV) && $(PY) -m scripts.backup dump --dir $(BACKUPS_DIR) --keep $(BACKUP_KEEP) $(if $(TENANT),--tenant $(TENANT))

db-restore: install ## restore FILE=... [TENANT=client_001] [INTO=scratch|inplace] [YES=1] [ROLES=file.roles.sql]
	@test -n "$(FILE)" || { echo "usage: make db-restore FILE=backups/<name> [TENANT=client_001] [INTO=scratch|inplace] [YES=1]"; exit 2; }
	@$(OPS_ENV) && $(PY) -m scripts.backup restore $(FILE) --into $(INTO) --dir $(BACKUPS_DIR) \
		$(if $(TENANT),--tenant $(TENANT)) $(if $(YES),--yes) $(if $(ROLES),--roles $(ROLES))

db-check: install ## would a single-file pg_dump fit max_locks_per_transaction? (else per schema)
	@$(OPS_ENV) && $(PY) -m scripts.backup check

redis-cli: install ## redis-cli as the admin user of REDIS_URL (ARGS="info keyspace")
	@$(OPS_ENV) && $(PY) -m scripts.redis_cli $(ARGS)

redis-keys: install ## keys per tenant prefix and family (SCAN, never KEYS)
	@$(OPS_ENV) && $(PY) -m scripts.redis_keys --families $(ARGS)

import-legacy: install ## import legacy SQLite bots: DIR=legacy/ (files <tenant_id>.db) [DRY_RUN=1]
	@test -n "$(DIR)" || { echo "usage: make import-legacy DIR=legacy/ [DRY_RUN=1]"; exit 2; }
	@$(OPS_ENV) && $(PY) -m scripts.migrate_to_postgres --dir $(DIR) $(if $(DRY_RUN),--dry-run)

rotate-keys: install ## re-encrypt stored secrets under the first ENCRYPTION_KEYS key [DRY_RUN=1]
	@$(OPS_ENV) && $(PY) -m scripts.rotate_keys $(if $(DRY_RUN),--dry-run)

docker-up: ## start a local Docker Engine and build botfleet-client:test
	@scripts/docker_engine.sh up

docker-down: ## stop the Docker Engine that docker-up started
	@scripts/docker_engine.sh down

image: ## build the client-bot image botfleet-client:latest (BASE_IMAGE=... changes the base)
	DOCKER_BUILDKIT=1 docker build --build-arg BASE_IMAGE=$${BASE_IMAGE:-python:3.11-slim} -t botfleet-client:latest .

services-up: ## start throwaway PostgreSQL and Redis (when DATABASE_URL/REDIS_URL don't answer)
	@scripts/services.sh up

services-down: ## stop the throwaway PostgreSQL and Redis
	@scripts/services.sh down

i18n: install ## extract message ids, update the .po catalogs and compile .mo (then translate ru)
	$(PY) -m scripts.i18n update

bench: install ## run every benchmark in bench/ (prints per-operation figures)
	@$(SERVICES) && for b in bench/bench_*.py; do m=$${b%.py}; $(PY) -m $${m//\//.} || exit 1; done

clean: ## remove caches and build leftovers (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
