#!/usr/bin/env bash
# Makes sure the Debian packages the tests need are installed.
# Usage: scripts/system-deps.sh COMMAND=PACKAGE ...  (e.g. chromium=chromium redis-server=redis-server)
# Installs what is missing when it can (root with apt-get); otherwise stops and names the package.
set -euo pipefail

missing=()
for pair in "$@"; do
  command_name="${pair%%=*}"
  package="${pair#*=}"
  command -v "$command_name" >/dev/null 2>&1 || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages needed by the tests: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "The tests need these Debian packages, which are not installed: ${missing[*]}" >&2
  echo "Install them (for example: sudo apt-get install ${missing[*]}) and run the tests again." >&2
  exit 1
fi
