#!/usr/bin/env bash
# Install the Debian packages tricklab's set-up needs, if apt-get is available.
#   scripts/system-deps.sh demo   python3-venv, dataset-fashion-mnist
#   scripts/system-deps.sh test   the same + chromium (report rendering test)
# Packages already installed are skipped; without apt-get (or root/sudo) it prints a note and
# carries on: Fashion-MNIST is then looked up elsewhere or downloaded on first use.
set -u
want=(dataset-fashion-mnist)
python3 -c 'import ensurepip, venv' 2>/dev/null || want+=(python3-venv)
[ "${1:-demo}" = test ] && want+=(chromium)

missing=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: apt-get not available; not installing: ${missing[*]}" >&2
  echo "      (Fashion-MNIST will be downloaded on first use; the browser test will be skipped)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "note: not root and no sudo; not installing: ${missing[*]}" >&2; exit 0
  fi
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "note: apt-get could not install ${missing[*]}; continuing without them" >&2
