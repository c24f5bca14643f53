# Source this file (bash): it makes sure everything MicroCrystalNet needs is installed, then
# exports MCN_PYTHON (the project's Python) and MCN_IJ_JAR (ImageJ 1.x).
#
# Idempotent and cached: the Python environment lives in
#   ${MICROCRYSTALNET_VENV_ROOT:-~/.cache/microcrystalnet}/venv-<key>
# where <key> hashes the dependency list of pyproject.toml and the Python version, so it is
# built once per dependency list (the first build downloads ~4 GB: torch with its CUDA
# libraries, TensorFlow) and reused after that.
set -euo pipefail

MCN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MCN_ROOT

mcn_log() { printf '[microcrystalnet setup] %s\n' "$*" >&2; }

mcn_apt_install() {
    # Debian/Ubuntu packages: Java (for ImageJ through scyjava), ImageJ 1.x, Xvfb, Maven; for the
    # tests (MCN_TEST_TOOLS=1, set by scripts/test) also Chromium, which renders the HTML reports.
    local missing=()
    command -v java >/dev/null 2>&1 || missing+=(default-jdk-headless)
    command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
    [ -f /usr/share/java/ij.jar ] || missing+=(libij-java)
    command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    if [ "${MCN_TEST_TOOLS:-0}" = 1 ]; then
        command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            mcn_log "missing system packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and run again"
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        mcn_log "missing system packages: ${missing[*]} and no apt-get here; install their equivalents and run again"
        return 1
    fi
    mcn_log "installing system packages: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

mcn_find_python() {
    local candidate
    for candidate in "${MICROCRYSTALNET_BASE_PYTHON:-}" python3 python3.12 python3.11 python3.13; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys, venv; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    mcn_log "Python 3.11-3.13 is needed (with the venv module); none was found on PATH."
    mcn_log "Install one (e.g. apt-get install python3 python3-venv) or set MICROCRYSTALNET_BASE_PYTHON."
    return 1
}

# The dependency list as pip arguments, one a line, read from pyproject.toml (core + test).
mcn_dependency_list() {
    "$1" - "$MCN_ROOT/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
    print(requirement)
PY
}

mcn_ensure_venv() {
    local base_python key venv_root venv started elapsed
    base_python="$(mcn_find_python)"
    key="$({ mcn_dependency_list "$base_python"; "$base_python" -c 'import sys; print(sys.version)'; uname -m; } | sha256sum | cut -c1-16)"
    venv_root="${MICROCRYSTALNET_VENV_ROOT:-$HOME/.cache/microcrystalnet}"
    venv="$venv_root/venv-$key"
    # ".complete" is written last: a build that stopped half-way is thrown away and redone. The
    # build holds a lock, so two commands started at once build it once (the second waits).
    if [ ! -f "$venv/.complete" ]; then
        mkdir -p "$venv_root"
        exec {mcn_lock}>"$venv_root/.venv-$key.lock"
        if ! flock -n "$mcn_lock"; then
            mcn_log "another command is building the Python environment $venv; waiting for it"
            flock "$mcn_lock"
        fi
        if [ ! -f "$venv/.complete" ]; then
            rm -rf "$venv"
            mcn_log "building the Python environment $venv (first run only; downloads ~4 GB)"
            started=$(date +%s)
            "$base_python" -m venv "$venv"
            "$venv/bin/python" -m pip install --quiet --upgrade pip "setuptools>=77" wheel
            mapfile -t requirements < <(mcn_dependency_list "$base_python")
            "$venv/bin/python" -m pip install --quiet --progress-bar off "${requirements[@]}"
            elapsed=$(( $(date +%s) - started ))
            echo "$elapsed" > "$venv/install-seconds.txt"
            touch "$venv/.complete"
            mcn_log "environment built in ${elapsed} s"
        fi
        flock -u "$mcn_lock"
        exec {mcn_lock}>&-
    fi
    # The environment holds the dependencies only; this checkout's package comes from
    # PYTHONPATH. Several checkouts can share one environment, and nothing in it is rewritten
    # when another checkout runs (no editable install to re-point).
    MCN_PYTHON="$venv/bin/python"
    PYTHONPATH="$MCN_ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
    export MCN_PYTHON PYTHONPATH
}

mcn_apt_install
mcn_ensure_venv
MCN_IJ_JAR="${MICROCRYSTALNET_IJ_JAR:-/usr/share/java/ij.jar}"
export MCN_IJ_JAR
