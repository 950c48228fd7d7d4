# Developer entry points; each target sets itself up first (idempotent).
PY := .venv/bin/python

.PHONY: setup test lint demo

setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest tests -q

lint: setup
	$(PY) -m flake8 mmdet_updetr tools tests configs demo setup.py
	$(PY) -m isort --check-only --diff mmdet_updetr tools tests configs demo setup.py
	$(PY) -m yapf -r -d mmdet_updetr tools tests configs demo setup.py

DEMO_CFG := configs/updetr/pretrain_demo_cpu.py
DEMO_DIR := work_dirs/pretrain_demo_cpu

# Pre-train the tiny demo on the built-in photos (a few minutes on CPU), then
# draw query-patch detection into $(DEMO_DIR)/query_patch_detection.png.
demo: setup
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR)
	$(PY) demo/query_patch_demo.py $(DEMO_CFG) "$$(cat $(DEMO_DIR)/last_checkpoint)" \
		--out $(DEMO_DIR)/query_patch_detection.png
