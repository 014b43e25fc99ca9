#!/usr/bin/env bash
# Installs the Debian packages the real-host tests use, when they are missing and we are root, and
# (as root) builds the container hosts' image and apt repository once: galley hosts and push tests.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v crontab >/dev/null || need+=(cron)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v git >/dev/null || need+=(git)
command -v start-stop-daemon >/dev/null || need+=(dpkg)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v sudo >/dev/null || need+=(sudo)
# the web panel's browser tests (playwright-core drives Debian's Chromium; no browser download)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "note: the tests want these Debian packages: ${need[*]} (run as root, or install them); tests that need them will fail" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
bash scripts/prepare-hosts.sh --image
