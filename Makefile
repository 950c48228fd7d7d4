# Developer entry points; each target sets itself up first (idempotent).
PY := .venv/bin/python

.PHONY: setup test lint demo

setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest tests -q

lint: setup
	$(PY) -m flake8 mmdet_updetr tools tests configs setup.py
	$(PY) -m isort --check-only --diff mmdet_updetr tools tests configs setup.py
	$(PY) -m yapf -r -d mmdet_updetr tools tests configs setup.py

demo: setup
	bash tools/demo_pretrain.sh
