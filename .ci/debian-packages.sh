#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed yet, with sudo when not
# root. Where apt-get is missing, or the user is neither root nor allowed sudo, it says which
# packages it leaves out and why, and exits 0: the make target goes on without them.
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
leave_out() {
  echo "not installing ${missing[*]}: $1. Going on without them; install them by other means (README.md, System packages)."
  exit 0
}
command -v apt-get >/dev/null || leave_out "no apt-get here"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || leave_out "not root, and no sudo"
  sudo -n true 2>/dev/null || [ -t 0 ] || leave_out "not root, and sudo needs a password that nobody can type here"
  sudo="sudo"
fi
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
