#!/usr/bin/env bash
# Create/refresh .venv from a requirements file; a stamp makes repeated runs near-instant.
# Usage: scripts/setup_venv.sh REQUIREMENTS_FILE   (path relative to the repo root)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

req="${1:?usage: scripts/setup_venv.sh REQUIREMENTS_FILE}"
[ -f "$req" ] || { echo "setup_venv: $req not found" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi

# Hash every requirements*.txt next to $req too, since files include each other with -r.
stamp=".venv/.stamp-$(basename "$req")"
hash="$(cat "$req" "$(dirname "$req")"/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    exit 0
fi

.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r "$req"
# dice-ml (counterfactuals) declares xgboost, lightgbm (and through them nvidia_nccl_cu12, hundreds of MB) but its
# sklearn backend with the "random" method never imports them: install it without its declared deps; what it does
# import (raiutils, jsonschema, tqdm, pandas, scikit-learn) is in requirements.txt or comes with it.
.venv/bin/python -m pip install --quiet --no-deps dice-ml==0.12
echo "$hash" > "$stamp"
