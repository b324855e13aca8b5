#!/usr/bin/env bash
# Set up Citewise, ingest the bundled sample documents into tenant "demo", create an admin
# and a user API key for it (kept in data/quickstart-keys.env, mode 0600, reused on re-runs),
# and serve the API (http://127.0.0.1:8000, docs at /docs) and the UI (http://127.0.0.1:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
CW=.venv/bin/citewise
DATA_DIR="${CITEWISE_DATA_DIR:-data}"
KEYS="$DATA_DIR/quickstart-keys.env"
mkdir -p "$DATA_DIR"

key_is_live() {  # is the key's prefix listed for tenant demo and not revoked?
  "$CW" keys list --tenant demo --json | .venv/bin/python -c \
    'import json,sys; p=sys.argv[1].split("_")[1]; sys.exit(not any(k["prefix"]==p and not k["revoked_at"] for k in json.load(sys.stdin)))' "$1"
}

CITEWISE_ADMIN_KEY="" CITEWISE_USER_KEY=""
if [[ -s "$KEYS" ]]; then
  # shellcheck disable=SC1090
  source "$KEYS"
fi
if [[ -z "$CITEWISE_ADMIN_KEY" || -z "$CITEWISE_USER_KEY" ]] \
  || ! key_is_live "$CITEWISE_ADMIN_KEY" || ! key_is_live "$CITEWISE_USER_KEY"; then
  CITEWISE_ADMIN_KEY=$("$CW" keys create --tenant demo --role admin --name quickstart-admin)
  CITEWISE_USER_KEY=$("$CW" keys create --tenant demo --role user --name quickstart-user \
    --user demo-user)
  (umask 077 && printf 'CITEWISE_ADMIN_KEY=%s\nCITEWISE_USER_KEY=%s\n' \
    "$CITEWISE_ADMIN_KEY" "$CITEWISE_USER_KEY" > "$KEYS")
fi
chmod 600 "$KEYS"

CITEWISE_API_KEY="$CITEWISE_ADMIN_KEY" "$CW" ingest samples/kestrel --tenant demo

cat <<MSG

API keys of tenant "demo" (stored in $KEYS):
  admin (documents, jobs, keys): $CITEWISE_ADMIN_KEY
  user  (ask, conversations):    $CITEWISE_USER_KEY
Try:
  source $KEYS
  curl -s localhost:8000/v1/ask -H "Authorization: Bearer \$CITEWISE_USER_KEY" \\
       -H 'content-type: application/json' -d '{"question": "How long must my password be?"}'
  CITEWISE_API_KEY=\$CITEWISE_ADMIN_KEY .venv/bin/citewise documents list --tenant demo
The UI at http://127.0.0.1:8501 uses the user key.

MSG
export CITEWISE_UI__API_KEY="$CITEWISE_USER_KEY"
exec "$CW" serve --ui
