VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install test test-slow demo clean model-card

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

demo: $(STAMP)
	$(VENV)/bin/sain demo --force

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# The evaluation table of MODELS.md (needs the benchmark folders; see MODELS.md).
TESTSETS ?= ../shared/datasets/test
CARD_MODELS ?= --model sain-x2-jpeg --model irn-x2 --model bicubic
model-card: $(STAMP)
	$(VENV)/bin/sain eval $(CARD_MODELS) --data $(TESTSETS)/Set5 --data $(TESTSETS)/Set14 \
		--modcrop 12 --out reports/card_set5_set14 --force
	$(VENV)/bin/sain eval $(CARD_MODELS) --data $(TESTSETS)/B100 --out reports/card_b100 --force
	$(VENV)/bin/sain eval $(CARD_MODELS) --data $(TESTSETS)/Kodak24 --out reports/card_kodak24 --force
