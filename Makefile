# Two commands from a fresh machine:  make demo   and   make test
# Both create .venv, install the project, and install the Debian data packages where allowed.

VENV    ?= .venv
PY      := $(VENV)/bin/python
TP      := $(VENV)/bin/twopaths
# CPU machines: the pinned CPU wheel comes from local disk; an unpinned torch would pull a
# multi-GB CUDA build. Machines with an NVIDIA driver get pip's default (CUDA) torch.
TORCH_CPU := torch==2.13.0
DEMO_OUT  ?= arena-quick

.PHONY: setup demo test data clean help

help:
	@echo "make demo   set up, then run the arena quick suite (about 10 minutes on 2 CPU cores)"
	@echo "make test   set up, then run the test suite"
	@echo "make clean  remove .venv and caches (runs/ is kept)"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q "torch>=2.4"; \
	else $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e '.[test]'
	@# the MOSES molecules (data files inside the molsets wheel); its old dependency pins are not
	@# installed because only its files are read (src/twopaths/data/molecules.py)
	$(PY) -m pip install -q --no-deps "molsets==0.3.1"
	touch $@

setup: $(VENV)/.installed data

data:
	@bash scripts/install-data.sh

# one pytest worker per core (each computes on one thread): the suite takes about half as long
test: setup
	$(PY) -m pytest -q -n auto --dist loadfile --durations=15

demo: setup
	$(TP) data list
	@echo
	$(TP) arena --suite quick --out $(DEMO_OUT)
	@echo; echo "arena report: $(DEMO_OUT)/report.html (also report.md, results.json, images/)"
	@if [ -f docs/arena-standard/report.md ]; then \
	  echo "the standard suite (about 10x the FLOPs, ~90 min on 2 idle cores): docs/arena-standard/report.md"; \
	else \
	  echo "the standard suite (about 10x the FLOPs, ~90 min on 2 idle cores): twopaths arena --suite standard --out arena-standard"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
