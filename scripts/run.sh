#!/usr/bin/env bash
# Set up mosflm-py in a virtual environment (./.venv) and run something in it.
#   bash scripts/run.sh demo    simulate a small rotation dataset and process it end to end
#   bash scripts/run.sh test    run the whole test suite
#   bash scripts/run.sh <cmd>   run any command inside the environment (e.g. mosflm-py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${MOSFLM_PY_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
        # Debian without python3-venv: bootstrap virtualenv from PyPI instead
        rm -rf "$VENV"
        "$PY" -m pip install --user --quiet --break-system-packages virtualenv 2>/dev/null \
            || "$PY" -m pip install --user --quiet virtualenv
        "$PY" -m virtualenv --quiet "$VENV"
    fi
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -e '.[test]'
    touch "$VENV/.installed"
fi

what=${1:-demo}
shift || true
case "$what" in
    demo)
        exec python -m mosflm_py.demo "$@"
        ;;
    test)
        set +e
        python -m pytest "$@"
        rc=$?
        # pytest exit 5 = no tests collected: treat as failure, a suite must run
        exit $rc
        ;;
    *)
        exec "$what" "$@"
        ;;
esac
