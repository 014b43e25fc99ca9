/** Where the local apt repository appears inside every host (a read-only bind mount). */
export const aptMountPoint = "/srv/galley-apt";

/**
 * Shell script run once on a freshly bootstrapped image (`$1` = its root): what every host has
 * in common. Per-host things (hostname, keys) are written when a host is created, never here.
 */
export const customizeScript = `set -eu
root="$1"
# the login Galley pushes as (become with sudo), like a cloud image's default user
chroot "$root" useradd --create-home --shell /bin/bash --comment Galley galley
printf 'galley ALL=(ALL:ALL) NOPASSWD: ALL\\n' > "$root/etc/sudoers.d/galley"
chmod 0440 "$root/etc/sudoers.d/galley"
# host keys are per host, generated when a host is created: none may be shared through the image
rm -f "$root"/etc/ssh/ssh_host_*
cat > "$root/etc/ssh/sshd_config.d/galley.conf" <<'EOF'
# written by galley hosts: one ed25519 host key per host, keys only
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
# the local apt repository is the only package source: hosts have no route out
mkdir -p "$root${aptMountPoint}"
rm -f "$root"/etc/apt/sources.list.d/* "$root/etc/apt/apt.conf.d/99mmdebstrap"
echo 'deb [trusted=yes] file:${aptMountPoint} ./' > "$root/etc/apt/sources.list"
echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/50galley"
# timers that would take apt's lock at random moments during runs and tests
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
: > "$root/etc/machine-id"
echo galley > "$root/etc/hostname"
`;
