#!/usr/bin/env bash
# Install the Debian packages callqa needs, only those that are missing. Idempotent.
set -euo pipefail
PKGS=(sox libsox-fmt-all ffmpeg espeak-ng openssh-server openssh-client mariadb-server mariadb-client
      postgresql redis-server nginx prometheus chromium chromium-driver)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing missing packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps package scripts from starting services we start ourselves when needed
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
