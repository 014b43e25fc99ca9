#!/usr/bin/env bash
# Installs the Debian packages the container provider (galley hosts) needs, only those missing.
# With --image, also builds the host image and the local apt repository into the cache
# ($GALLEY_CACHE_DIR, default ~/.cache/galley): once per machine, about 40 s, then cached.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null || need+=(mmdebstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ip >/dev/null || need+=(iproute2)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v nsenter >/dev/null && command -v unshare >/dev/null && command -v flock >/dev/null || need+=(util-linux)
command -v setpriv >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "note: galley hosts needs these Debian packages: ${need[*]} (and root); its tests will be skipped" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # mmdebstrap recommends a long list (qemu, binfmt…) that building a native image does not use
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "${1:-}" = "--image" ] && [ "$(id -u)" = 0 ]; then
  node=node_modules/.bin/node
  [ -x "$node" ] || node=node
  "$node" --input-type=module -e '
    const { buildImage } = await import("./src/providers/container/rebuild.ts");
    await buildImage("debian-bookworm", false, (line) => process.stderr.write(`${line}\n`));
  '
fi
