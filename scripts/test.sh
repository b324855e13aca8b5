#!/usr/bin/env bash
# Set up (idempotent) and run every check: lint, format, types, import layers, tests.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
V=.venv/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false

echo "== ruff";        "$V/ruff" check .
echo "== ruff format"; "$V/ruff" format --check .
echo "== mypy";        "$V/mypy"
echo "== import layers"; "$V/lint-imports"
echo "== pytest (browser tests too: they skip where /usr/bin/chromium is missing)"
"$V/python" -m pytest -m "" "$@"
