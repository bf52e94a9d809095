#!/usr/bin/env bash
# Cached Python venv for the conformance tools (tempest, openstack CLI, sdk).
#
#   source conformance/venv.sh   # build if needed, then put .venv/bin first in PATH
#   conformance/venv.sh          # build if needed (prints the venv path)
#
# The venv lives in conformance/.venv (override: STRATUS_VENV=/path). It is
# rebuilt from scratch when requirements.txt or the python3 version changes:
# the sha256 of requirements.txt plus the Python version are stored in
# .venv/requirements.sha256. Interpreter: $PYTHON, default python3.
# Safe to source from scripts running under `set -euo pipefail`.

_stratus_venv() {
    local here venv req py stamp want have log
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    venv="${STRATUS_VENV:-$here/.venv}"
    req="$here/requirements.txt"
    py="${PYTHON:-python3}"
    stamp="$venv/requirements.sha256"

    if ! command -v "$py" >/dev/null 2>&1; then
        echo "venv.sh: $py not found" >&2
        return 1
    fi
    want="$(sha256sum "$req" | cut -d' ' -f1) python-$("$py" -c 'import platform; print(platform.python_version())')"
    have=""
    if [[ -f "$stamp" && -x "$venv/bin/python" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
        have="$(cat "$stamp")"
    fi

    if [[ "$have" != "$want" ]]; then
        echo "venv.sh: building $venv (requirements.txt or python changed)" >&2
        rm -rf "$venv"
        log="$(mktemp "${TMPDIR:-/tmp}/stratus-venv.XXXXXX")"
        if ! { "$py" -m venv "$venv" &&
               "$venv/bin/python" -m pip install -q --disable-pip-version-check \
                   -r "$req"; } >"$log" 2>&1; then
            echo "venv.sh: building the venv failed:" >&2
            tail -n 40 "$log" >&2
            rm -f "$log"
            rm -rf "$venv"
            return 1
        fi
        rm -f "$log"
        echo "$want" >"$stamp"
    fi

    STRATUS_VENV_DIR="$venv"
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # sourced: build, then activate (PATH only; no prompt changes)
    if _stratus_venv; then
        export VIRTUAL_ENV="$STRATUS_VENV_DIR"
        case ":$PATH:" in
            *":$VIRTUAL_ENV/bin:"*) ;;
            *) export PATH="$VIRTUAL_ENV/bin:$PATH" ;;
        esac
        unset -f _stratus_venv
    else
        unset -f _stratus_venv
        return 1
    fi
else
    set -euo pipefail
    _stratus_venv
    echo "$STRATUS_VENV_DIR"
fi
