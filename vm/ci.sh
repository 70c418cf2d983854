#!/usr/bin/env bash
# CI lane of the kernel matrix: the pure cgroup v2 guest (a layout the hybrid CI host cannot
# give) with the smoke subset. Installs what it needs, then runs `nox -s vm`.
#
# Usage: bash vm/ci.sh [extra `python -m vm run` options]
# Environment: DONKEY_VM_CI_KERNELS (default trixie), DONKEY_VM_CI_LAYOUTS (default v2),
#              DONKEY_VM_CACHE (default /var/cache/donkey-vm).
# Exit status: that of `nox -s vm`: 0 when every selected test passed.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "vm/ci.sh: needs root (debootstrap, chroot and qemu); run it as root" >&2
    exit 125
fi

packages=(qemu-system-x86 qemu-utils debootstrap e2fsprogs kmod zstd dpkg ca-certificates)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "vm/ci.sh: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python3 -m nox --version >/dev/null 2>&1 || python3 -m pip install -q nox

started=$(date +%s)
status=0
python3 -m nox -s vm -- \
    --kernel "${DONKEY_VM_CI_KERNELS:-trixie}" \
    --cgroup "${DONKEY_VM_CI_LAYOUTS:-v2}" \
    --smoke --no-doc "$@" || status=$?
echo "vm/ci.sh: kernel matrix lane took $(( $(date +%s) - started )) s, exit $status"
exit "$status"
