#!/usr/bin/env bash
# Run the app and one retrain worker beside it; extra arguments go to `streamlit run`,
# HITL_* env vars pass through untouched. Stopping the app (Ctrl+C) stops the worker too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_venv.sh requirements.txt

.venv/bin/python -m hitl_core worker &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT INT TERM
.venv/bin/streamlit run app.py "$@"
