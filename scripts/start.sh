#!/usr/bin/env bash
# Run the app; extra arguments go to `streamlit run`, HITL_* env vars pass through untouched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_venv.sh requirements.txt
exec .venv/bin/streamlit run app.py "$@"
