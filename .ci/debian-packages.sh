#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed yet.
# Does nothing where apt-get is absent; uses sudo when not root.
set -euo pipefail
command -v apt-get >/dev/null || { echo "no apt-get: install $* by other means (see README)"; exit 0; }
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
