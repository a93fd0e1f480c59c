# `make run` and `make test` work on a fresh machine: every install step lives here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= examples/barrage

.PHONY: install test-install run test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

test-install: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	# Browser tests drive Debian's Chromium; never a downloaded browser.
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	# tests/k8s_api drive Debian's kubectl (kubernetes-client) against the daemon.
	command -v kubectl >/dev/null || (apt-get update -qq && apt-get install -y -qq kubernetes-client >/dev/null)
	# OCI tests (tests/oci) run images with Debian's podman and runc, from a base image mmdebstrap builds.
	(command -v podman && command -v runc && command -v mmdebstrap) >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq podman runc mmdebstrap >/dev/null)
	# tests/protocols use curl's HTTP/2 (nghttp2) for the Upgrade: h2c handshake.
	command -v curl >/dev/null || (apt-get update -qq && apt-get install -y -qq curl >/dev/null)
	# JobSink runs mount each event at /etc/jobsink-event with Debian's bubblewrap (tests/eventing_flows).
	command -v bwrap >/dev/null || (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null)
	touch $@

run: install
	$(BIN)/wisp up $(DEMO)

lint: test-install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two workers, a test file each at a time (a file's tests share fixtures and order): the suite's daemons, podman
# and Chromium spend much of their time waiting, so two halve its wall time on two cores.
PYTEST_WORKERS ?= 2

test: lint
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) .wisp .mypy_cache .pytest_cache .ruff_cache
