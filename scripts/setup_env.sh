#!/usr/bin/env bash
# Creates (or reuses) the cached virtualenvs outside the repo and links them as .venv / .venv-rasa.
# Keys: the lock files, so a changed lock builds a fresh env and an unchanged one costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${KABASHOAX_CACHE:-$HOME/.cache/kabashoax}"
mkdir -p "$CACHE"

key() { cat "$@" | sha256sum | cut -c1-12; }

app_env() {
  local py="${PYTHON311:-python3.11}"
  local dir="$CACHE/app-$(key requirements.lock.txt)"
  if [ ! -f "$dir/.complete" ]; then
    echo ">> building app venv in $dir"
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/pip" install -q -U pip
    # The CPU torch wheel first: a bare 'torch' would pull a multi-GB CUDA build.
    "$dir/bin/pip" install -q torch==2.13.0
    "$dir/bin/pip" install -q -r requirements.lock.txt
    touch "$dir/.complete"
  fi
  overlay_env "$py" "$dir"
}

# The heavy env is shared by every clone; each clone gets a small .venv of its own that sees the heavy
# site-packages through a .pth file and holds only this clone's editable install and `kabashoax` script.
overlay_env() {
  local py="$1" heavy="$2" site
  site=$("$heavy/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  if [ ! -f .venv/.heavy ] || [ "$(cat .venv/.heavy)" != "$heavy" ]; then
    rm -rf .venv.tmp && "$py" -m venv --without-pip .venv.tmp
    local own
    own=$(.venv.tmp/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    echo "import site; site.addsitedir('$site')" > "$own/kabashoax-heavy.pth"
    for tool in "$heavy"/bin/*; do
      case "$(basename "$tool")" in python*|pip*|activate*|Activate*) ;; *) ln -sfn "$tool" .venv.tmp/bin/ ;; esac
    done
    ln -sfn "$heavy/bin/pip" .venv.tmp/bin/pip-heavy
    echo "$heavy" > .venv.tmp/.heavy
    rm -rf .venv && mv .venv.tmp .venv
  fi
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . >"$CACHE/editable.log" 2>&1 \
    || { cat "$CACHE/editable.log" >&2; exit 1; }
}

find_rasa_python() {
  for cand in "${RASA_PYTHON:-}" "$HOME/.pyenv/versions/3.10.13/bin/python" python3.10 python3.9 python3.8; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert (3, 8) <= sys.version_info[:2] <= (3, 10)' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  return 1
}

rasa_env() {
  local lock=nlu/requirements-rasa.lock.txt extra=nlu/requirements-rasa-extra.txt
  local dir="$CACHE/rasa-$(key "$lock" "$extra")"
  if [ ! -f "$dir/.complete" ]; then
    local py
    if ! py=$(find_rasa_python); then
      echo "!! Rasa needs Python 3.8-3.10 (none found; set RASA_PYTHON). The bot will use its fallback classifier." >&2
      return 1
    fi
    echo ">> building Rasa venv with $py in $dir (about 2 minutes)"
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/pip" install -q -U "pip<25" wheel "setuptools<71"
    "$dir/bin/pip" install -q rasa==3.6.21 -c "$lock"
    # Our own Rasa components' needs (numpy-only wheels), constrained so no Rasa pin moves.
    "$dir/bin/pip" install -q -r "$extra" -c "$lock"
    touch "$dir/.complete"
  fi
  ln -sfn "$dir" .venv-rasa
}

browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    echo ">> installing Debian chromium for the browser tests"
    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "!! could not install chromium" >&2
  fi
}

case "${1:-all}" in
  app) app_env ;;
  rasa) rasa_env ;;
  browser) browser ;;
  all) app_env; rasa_env || true; browser ;;
esac
