#!/usr/bin/env bash
# Set up Citewise, ingest the bundled sample documents into tenant "demo",
# and serve the API (http://127.0.0.1:8000, docs at /docs) and the UI (http://127.0.0.1:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
.venv/bin/citewise ingest samples/kestrel --tenant demo
exec .venv/bin/citewise serve --ui
