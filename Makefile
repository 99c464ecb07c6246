# Two commands on a fresh machine: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
export STOREOM_HOME ?= $(CURDIR)/var
PYTEST_ARGS ?=
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: install demo test bench serve-down clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade "pip==26.3"
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import om_core, sqlalchemy, dagster, streamlit, statsforecast"
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(BIN)/storeom demo $(if $(FRESH),--fresh,)

test: install
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

BENCH_CMD = $(BIN)/python -m bench $(if $(SCALE),--scale $(SCALE),) $(foreach b,$(ONLY),--only $(b))

# With PostgreSQL's server binaries installed (Debian: postgresql), the core benchmarks also run on a throwaway
# server that .ci/run starts and stops; otherwise, or with STOREOM_BENCH_POSTGRES_URL set, they use what is there.
bench: install
	@if [ -z "$$STOREOM_BENCH_POSTGRES_URL" ] && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		STOREOM_CI_NO_CHROMIUM=1 STOREOM_CI_PG_PORT=56432 STOREOM_CI_TEST_CMD="$(BENCH_CMD)" bash .ci/run; \
	else \
		$(BENCH_CMD); \
	fi

clean:
	rm -rf $(VENV) var
