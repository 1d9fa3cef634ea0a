# Everything a fresh machine needs is installed from here: `make run` and `make test` are the quickstart.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
export CLV_DATA_DIR ?= $(CURDIR)/data
# the instance lives next to the data dir, where a `clv` command run without make looks for it too
export DAGSTER_HOME ?= $(abspath $(CLV_DATA_DIR)/../.dagster_home)
export PYTHONUNBUFFERED := 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
CLV := $(BIN)/clv
DEMO_CUSTOMERS ?= 20000
DEMO_DAYS ?= 730

.PHONY: setup instance data features train promote-clv promote-segment serve-api serve-dashboard dev run test lint bench mlflow-ui browser clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP) instance

# The instance's dagster.yaml follows clv_platform/dagster.yaml unless its settings were edited there: an edited one
# is kept, with a note once per change of our settings (.dagster.yaml.shipped remembers the version last copied; an
# instance holding the settings of an earlier version of ours, EARLIER_DAGSTER_SETTINGS' cksums, was not edited).
# Before 2026-11, DAGSTER_HOME was always .dagster_home in this folder, for every data dir; it is now next to the data
# dir, and a new instance records its data dir (.data_dir). So while an unrecorded ./.dagster_home (the runs and
# sensor states of every data dir until then) is here, a data dir elsewhere is refused a new, empty instance.
EARLIER_DAGSTER_SETTINGS := 2342184313-114 3504491431-236
instance:
	@if [ ! -e "$(DAGSTER_HOME)" ] && [ "$(abspath $(DAGSTER_HOME))" != "$(CURDIR)/.dagster_home" ] \
	    && [ -f .dagster_home/dagster.yaml ] && [ ! -f .dagster_home/.data_dir ]; then \
	  echo "make: the Dagster instance of earlier versions (runs, sensor and schedule states of every data dir) is" \
	    "in $(CURDIR)/.dagster_home, but with CLV_DATA_DIR=$(CLV_DATA_DIR) it now lives next to the data dir, in" \
	    "$(DAGSTER_HOME). Move it there to keep them: mv $(CURDIR)/.dagster_home $(DAGSTER_HOME); or keep it" \
	    "where it is: export DAGSTER_HOME=$(CURDIR)/.dagster_home; or start an empty one: mkdir $(DAGSTER_HOME)" >&2; \
	  exit 1; fi
	@mkdir -p $(DAGSTER_HOME) $(CLV_DATA_DIR)
	@[ -f "$(DAGSTER_HOME)/dagster.yaml" ] || [ -n "$$(ls -A "$(DAGSTER_HOME)")" ] || echo "$(CLV_DATA_DIR)" > "$(DAGSTER_HOME)/.data_dir"
	@ours=clv_platform/dagster.yaml; f="$(DAGSTER_HOME)/dagster.yaml"; last="$(DAGSTER_HOME)/.dagster.yaml.shipped"; \
	sum() { grep -v '^ *#' "$$1" | cksum | tr ' ' -; }; \
	if [ ! -f "$$f" ] || [ "$$(sum "$$f")" = "$$(sum "$$ours")" ] || [[ " $(EARLIER_DAGSTER_SETTINGS) " == *" $$(sum "$$f") "* ]] \
	    || { [ -f "$$last" ] && [ "$$(sum "$$f")" = "$$(sum "$$last")" ]; }; then \
	  cp "$$ours" "$$f"; cp "$$ours" "$$last"; \
	elif [ ! -f "$$last" ] || [ "$$(sum "$$ours")" != "$$(sum "$$last")" ]; then cp "$$ours" "$$last"; \
	  echo "make: kept your edited $$f; the settings in $$ours differ from it (compare: diff $$ours $$f;" \
	    "take ours: cp $$ours $$f)" >&2; fi

# Headless Chromium for the dashboard's browser tests (Debian package; Playwright's own download is not used).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

data: setup
	$(CLV) generate --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS)

features: setup
	$(CLV) materialize features

train: setup
	$(CLV) materialize train

promote-clv: setup
	$(CLV) promote clv

promote-segment: setup
	$(CLV) promote segment

serve-api: setup
	$(BIN)/gunicorn --workers 2 --bind 127.0.0.1:$${API_PORT:-8000} 'api:create_app()'

serve-dashboard: setup
	$(BIN)/streamlit run dashboards/streamlit_app.py --server.headless true --server.port $${DASHBOARD_PORT:-8501} \
		--server.address $${DASHBOARD_ADDRESS:-127.0.0.1} --browser.gatherUsageStats false --client.toolbarMode viewer

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CLV_DATA_DIR)/mlflow.db --port $${MLFLOW_PORT:-5000}

# Dagster UI: webserver and daemon as two processes (dagster dev does not stop cleanly on SIGTERM).
# The instance's SQLite storage is created once before the daemon and the webserver start: created by both at
# once, it can end up with two alembic heads and refuse to load (dagster-io/dagster#27390).
dev: setup
	$(BIN)/dagster instance migrate >/dev/null
	$(BIN)/dagster-daemon run -w workspace.yaml & \
	trap 'kill %1' EXIT; \
	$(BIN)/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p $${DAGSTER_PORT:-3000}

run: setup
	$(CLV) run --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS)

lint: setup
	$(BIN)/ruff check .

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: setup
	$(CLV) bench all

# Deletes the data dir and the Dagster instance in use (CLV_DATA_DIR, DAGSTER_HOME), only when each is absent,
# empty or looks like the platform's own (a mistyped CLV_DATA_DIR=$$HOME must not be wiped).
clean:
	@for d in "$(CLV_DATA_DIR)" "$(DAGSTER_HOME)"; do \
	  if [ -z "$$d" ] || [ "$$d" = / ]; then echo "make clean: refusing to delete '$$d'" >&2; exit 1; fi; \
	  if [ -d "$$d" ] && [ -n "$$(ls -A "$$d")" ] && ! ls "$$d" | grep -qxE 'warehouse\.duckdb|landing|mlflow\.db|serving|dagster\.yaml'; then \
	    echo "make clean: $$d does not look like a clv_platform data dir or Dagster instance; delete it by hand" >&2; exit 1; fi; \
	done
	rm -rf "$(CLV_DATA_DIR)" "$(DAGSTER_HOME)"
