# Two entry points: `make up` starts the cluster, `make test` runs the suite.
# Both install what is missing first (Debian packages, a .venv with pinned deps). Packages are
# installed with services' start refused (policy-rc.d): nginx is there for the images the nodes
# build, never to run on the machine.
# `make test-fast` runs only the tests that need no etcd, root, cluster or kubectl, and
# installs nothing: run `make setup` (as root) once first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := etcd-server etcd-client iptables nftables iproute2 containernetworking-plugins \
	bind9-dnsutils dnsperf dnsmasq-base docker.io docker-compose debootstrap conntrack procps curl util-linux \
	runc skopeo umoci docker-registry busybox-static nginx chromium chromium-driver

.PHONY: setup apt venv test test-fast test-compose lint typecheck up bench clean-venv

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  policy=/usr/sbin/policy-rc.d; made=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod +x $$policy; made=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  rc=$$?; [ -z "$$made" ] || rm -f $$policy; [ $$rc -eq 0 ] || exit $$rc; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The markers are explained in pyproject.toml and given in tests/conftest.py.
FAST_TESTS := not etcd and not netns and not root and not e2e and not compat and not compose

# compose.yaml for real: the image (its base made offline if it cannot be pulled), `compose up`,
# the seed walkthrough inside it, `compose down -v`. Uses the engine that answers, else starts a
# private dockerd. `make test` runs these too.
test-compose: setup
	$(PY) -m pytest tests/compose $(PYTEST_ARGS)

test-fast:
	@test -x $(PY) || { echo "no $(VENV) yet: run 'make setup' (as root) first" >&2; exit 1; }
	$(PY) -m pytest -m "$(FAST_TESTS)" $(PYTEST_ARGS)

# Style and correctness rules (ruff), the layering and no-cycle contracts (import-linter),
# and the complexity gate; the rule choices are explained in pyproject.toml.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m devtools.complexity

typecheck: setup
	$(VENV)/bin/mypy

up: setup
	$(PY) -m cluster.up $(UP_ARGS)

bench: setup
	$(PY) -m bench.apiserver

clean-venv:
	rm -rf $(VENV)
