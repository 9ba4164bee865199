# The README's two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= out

.PHONY: demo test check bench clips chromium studio clean-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import cv2, mediapipe, torch, av, c2pa, onnxruntime, nudenet, dlib, starlette, uvicorn, playwright; print('facetwin environment ready: torch', torch.__version__, 'opencv', cv2.__version__)"
	touch $(STAMP)

clips: $(STAMP)
	$(PY) -m facetwin.demo_data

demo: clips
	$(PY) -m facetwin demo --out $(DEMO_OUT)

# The studio's browser tests drive Debian's Chromium with Playwright (never `playwright install`, which
# downloads a browser): installed with apt-get when missing (as root, or through sudo).
chromium:
	@test -x /usr/bin/chromium || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@test -x /usr/bin/chromium

test: clips chromium
	$(PY) -m pytest -q

# The fast loop while editing (under two minutes): lint, type check, and the tests that need no trained
# model (tests/conftest.py: the "slow" marker). `make test` runs everything.
check: clips
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -m "not slow"

# facetwin studio on ./studio-project (PROJECT=... PORT=... to change)
studio: $(STAMP)
	$(PY) -m facetwin studio $(or $(PROJECT),studio-project) --port $(or $(PORT),8765)

bench: clips chromium
	$(PY) bench/extract.py
	$(PY) bench/train.py
	$(PY) bench/compare_models.py
	$(PY) bench/convert.py
	$(PY) bench/provenance.py
	$(PY) bench/gate.py
	$(PY) bench/quality.py
	$(PY) bench/studio.py

clean-venv:
	rm -rf $(VENV)
