#!/usr/bin/env bash
# Installs the Debian packages the real-host tests use, when they are missing and we are root.
set -euo pipefail
need=()
command -v crontab >/dev/null || need+=(cron)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v git >/dev/null || need+=(git)
command -v start-stop-daemon >/dev/null || need+=(dpkg)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "note: the tests want these Debian packages: ${need[*]} (run as root, or install them); tests that need them will fail" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
