VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install test test-slow test-gpu test-browser serve lint format demo clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

# the CUDA / AMP checks (skipped, with the reason, on a machine without a GPU)
test-gpu: $(STAMP)
	$(PY) -m pytest tests/test_cuda.py -rs

# the page of `sain serve` in headless Chromium (Debian's package, installed here if missing; needs root)
test-browser: $(STAMP)
	@[ -x /usr/bin/chromium ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m pytest tests/test_serve_browser.py -rs

# the API and the web page on http://127.0.0.1:8000/
serve: $(STAMP)
	$(VENV)/bin/sain serve

# ruff (lint and format) and mypy, configured in pyproject.toml; runs all three, fails if any fails
lint: $(STAMP)
	@status=0; \
	$(VENV)/bin/ruff check || status=1; \
	$(VENV)/bin/ruff format --check || status=1; \
	$(VENV)/bin/mypy || status=1; \
	exit $$status

# rewrite FILES (default: nothing) with ruff's fixes and formatting, e.g. make format FILES=src/sain/foo.py
format: $(STAMP)
	$(if $(FILES),$(VENV)/bin/ruff check --fix $(FILES) && $(VENV)/bin/ruff format $(FILES),@echo "usage: make format FILES='a.py b.py'")

demo: $(STAMP)
	$(VENV)/bin/sain demo --force

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# The evaluation tables of MODELS.md (needs the benchmark folders; see MODELS.md).
# `make -j2 model-card` runs the reports side by side, one thread each.
TESTSETS ?= ../shared/datasets/test
EVAL := $(VENV)/bin/sain eval --threads 1 --no-progress --force
CARDS := reports/card_set5_set14 reports/card_b100 reports/card_b100_irn reports/card_kodak24 \
	reports/card_kodak24_irn
.PHONY: model-card $(CARDS)
model-card: $(CARDS)
reports/card_set5_set14: $(STAMP)
	$(EVAL) --model sain-x2-jpeg --model irn-x2 --model bicubic --data $(TESTSETS)/Set5 \
		--data $(TESTSETS)/Set14 --modcrop 12 --out $@
reports/card_b100: $(STAMP)
	$(EVAL) --model sain-x2-jpeg --model bicubic --data $(TESTSETS)/B100 --out $@
reports/card_b100_irn: $(STAMP)
	$(EVAL) --model irn-x2 --data $(TESTSETS)/B100 --out $@
reports/card_kodak24: $(STAMP)
	$(EVAL) --model sain-x2-jpeg --model bicubic --data $(TESTSETS)/Kodak24 --out $@
reports/card_kodak24_irn: $(STAMP)
	$(EVAL) --model irn-x2 --data $(TESTSETS)/Kodak24 --out $@

# The cards of one model against bicubic on Set5+Set14 (modcrop 12), B100 and Kodak24:
# reports/card_<tag>_<set> evaluates CARD_MODEL_<tag>. DUAL and X4 name the models, the bundled
# ones by default, e.g. `make -j2 model-card-x4 X4=runs/irn_x4_ft_cpu/best.safetensors` before
# bundling. Dual-IRN: MODELS.md "dual-irn-x2"; x4: "irn-x4" and, with X4=sain-x4-jpeg, "sain-x4-jpeg".
DUAL ?= dual-irn-x2
X4 ?= irn-x4
# a candidate for sain-x2-jpeg, e.g. `make -j2 model-card-x2 X2=runs/soup/x2.safetensors`
X2 ?= sain-x2-jpeg
CARD_MODEL_dual = $(DUAL)
CARD_MODEL_x4 = $(X4)
CARD_MODEL_x2 = $(X2)
.PHONY: model-card-dual-irn model-card-x4 model-card-x2 FORCE
FORCE:
model-card-dual-irn: reports/card_dual_set5_set14 reports/card_dual_b100 reports/card_dual_kodak24
model-card-x4: reports/card_x4_set5_set14 reports/card_x4_b100 reports/card_x4_kodak24
model-card-x2: reports/card_x2_set5_set14 reports/card_x2_b100 reports/card_x2_kodak24
# Issue 13's comparison: the quality-aware model QFM (a weight file, e.g.
# runs/sain_x2_jpeg_qf_cpu/model.safetensors; nothing is bundled yet) against the fixed-QF model
# with the same budget (FIXED6800: sain-x2-jpeg's step-6800 export, bundled until 2026-12-06: the
# same data, crop, batch and 6,800 steps) on Set14 and B100 at JPEG QF 30/50/70/80/90.
# `make -j2 model-card-qf QFM=...`; MODELS.md "The quality-aware model from scratch".
FIXED6800 := train_state/sain_x2_jpeg_step6800.safetensors
CARD_MODEL_qf = $(QFM)
CARD_MODEL_fixed6800 = $(FIXED6800)
.PHONY: model-card-qf
model-card-qf: reports/card_qf_set14 reports/card_qf_b100 reports/card_fixed6800_b100
# Its upper bound at QF 90: the plain SAIN trained at QF 90 only on that budget
# (configs/sain_x2_jpeg_q90_cpu.toml), compared with card_qf_set14's and card_fixed6800_b100's
# rows: `make -j2 model-card-q90 Q90=runs/sain_x2_jpeg_q90_cpu/model.safetensors`.
CARD_MODEL_q90 = $(Q90)
.PHONY: model-card-q90
model-card-q90: reports/card_q90_set5_set14 reports/card_q90_b100
ifneq ($(filter model-card-q90,$(MAKECMDGOALS)),)
ifeq ($(Q90),)
$(error give the QF-90 model: make model-card-q90 Q90=FILE)
endif
endif
reports/card_qf_set14: $(STAMP) FORCE
	$(if $(QFM),,$(error give the quality-aware model: make model-card-qf QFM=FILE))
	$(EVAL) --model $(QFM) --model $(FIXED6800) --model bicubic --data $(TESTSETS)/Set14 --modcrop 12 --out $@
reports/card_%_set5_set14: $(STAMP) FORCE
	$(EVAL) --model $(CARD_MODEL_$*) --model bicubic --data $(TESTSETS)/Set5 --data $(TESTSETS)/Set14 --modcrop 12 --out $@
reports/card_%_b100: $(STAMP) FORCE
	$(EVAL) --model $(CARD_MODEL_$*) --model bicubic --data $(TESTSETS)/B100 --out $@
reports/card_%_kodak24: $(STAMP) FORCE
	$(EVAL) --model $(CARD_MODEL_$*) --model bicubic --data $(TESTSETS)/Kodak24 --out $@
