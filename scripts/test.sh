#!/usr/bin/env bash
# Prepare a fresh Debian machine (system packages, venv) and run the whole test suite.
# Extra arguments go to pytest. Browsers come from Debian's chromium: never `playwright install`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Debian's own python3 cannot create venvs without python3-venv.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing Debian packages: ${missing[*]}" >&2
        echo "test.sh: install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

bash scripts/setup_venv.sh requirements-dev.txt

export OMP_NUM_THREADS=1 HITL_REQUIRE_PG=1 HITL_REQUIRE_BROWSER=1
exec .venv/bin/python -m pytest -q "$@"
