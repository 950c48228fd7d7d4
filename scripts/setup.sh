#!/usr/bin/env bash
# One idempotent set-up for developers, the README and CI.
#
# Creates .venv/ (git-ignored) inside the repository, installs torch, the
# build requirements, mmcv 2.1.0 from source with ops, mmengine, mmdet, the
# rest, and this package in editable mode. A stamp file records a hash of the
# requirement files; when it matches, the script exits at once.
#
#   bash scripts/setup.sh          # set up (or check) the environment
#   VENV=/path bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.updetr-setup-stamp"
want=$(cat requirements/*.txt setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "[setup] $VENV is up to date"
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "[setup] torch and build requirements"
# Build requirements double as constraints, so no later install lifts
# setuptools past the version that still ships pkg_resources.
pip install -q -r requirements/runtime.txt -r requirements/build.txt
pipc() { pip "$@" -c requirements/build.txt; }

if ! "$VENV/bin/python" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
    echo "[setup] building mmcv 2.1.0 with ops (about 12 minutes on 2 cores;"
    echo "        pip caches the wheel, later set-ups take seconds)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        pipc install -q --no-build-isolation mmcv==2.1.0
fi

echo "[setup] mmengine, mmdet, test requirements and mmdet_updetr (editable)"
pipc install -q -r requirements/mminstall.txt -r requirements/tests.txt
pipc install -q --no-build-isolation --no-deps -e .

"$VENV/bin/python" -c 'import mmdet_updetr, mmcv.ops' \
    || { echo "[setup] import check failed" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "[setup] done: $VENV"
