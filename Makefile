# Two commands for a newcomer: `make demo` (set up, run the workflow on synthetic data)
# and `make test` (set up, run the tests). Both create .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: demo test lint venv clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/snakemake all export_model --cores $(CORES) --configfile config/demo.yaml
	$(BIN)/snakemake --cores 1 --configfile config/demo.yaml --report results/report.html
	@echo
	@echo "Demo done. Per-nucleus measurements: results/batches/demo/nuclei.csv"
	@echo "  per image: results/batches/demo/images.csv (skipped files: skipped.csv)"
	@echo "  label images: results/batches/demo/labels/; outlines: results/batches/demo/overlays/"
	@echo "  report (figures, outlines, training, evaluation): results/report.html"
	@echo "  model: results/model/; its scores: results/evaluation/summary.csv; logs: logs/"
	@echo "  model card: results/model/MODEL_CARD.md"
	@echo "  bioimage.io package: results/model_export/nucleiseg.bioimageio.zip"
	@awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$$i] = i; next } \
	    $$col["set"] == "test" && $$col["modality"] == "overall" { dsb[$$col["method"]] = $$col["dsb_score"] } \
	    END { printf "DSB score on the test split: network %.3f, classical baseline (Otsu + watershed) %.3f\n", dsb["network"], dsb["classical"] }' \
	    results/evaluation/summary.csv

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check --select F,E9,W6 workflow tests benchmarks

clean:
	rm -rf results/* resources/synthetic resources/synthetic_batch .snakemake
