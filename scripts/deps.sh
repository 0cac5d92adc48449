#!/usr/bin/env bash
# Installs every Debian package vmcrypt needs to build, test, benchmark and run its
# demo. Idempotent: packages already present are skipped without touching apt.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config clang llvm
  libssl-dev libcryptsetup-dev libevent-dev libjansson-dev libsqlite3-dev
  libcmocka-dev
  cryptsetup-bin qemu-utils util-linux xxd
  time
  python3-pykmip python3-cryptography sqlite3 openssl
  # vmcrypt vm: the libvirt C API, libvirtd + QEMU for the interop tests, libxml2 for
  # domain XML, and the guest kit (a cloud kernel and a static busybox initramfs).
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev libxml2-dev
  qemu-system-x86 linux-image-cloud-amd64 busybox-static swtpm cpio
  # UEFI guests (NVRAM encryption, tests/interop/vm-home.sh).
  ovmf
  # trusted key provider: tpm2-tss on the host side (Esys, MU, TCTI loader and the
  # swtpm TCTI), swtpm_setup and tpm2-tools for the attestation tests.
  libtss2-dev swtpm-tools tpm2-tools
  # the fleet: libpq for the manager's PostgreSQL store, a PostgreSQL server and
  # curl and iproute2 (network namespaces) for its tests.
  libpq-dev postgresql curl iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libvirt's QEMU driver refuses to start without its compiled-in user, even when
# qemu.conf names another ("Failed to parse user 'libvirt-qemu'"); the Debian
# package that makes it (libvirt-daemon-system) wants systemd, so make it here.
# The same holds for its group.
if [ -x /usr/sbin/libvirtd ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  getent group kvm >/dev/null || $SUDO groupadd -r kvm
  getent group libvirt-qemu >/dev/null || $SUDO groupadd -r libvirt-qemu
  getent passwd libvirt-qemu >/dev/null || $SUDO useradd -r -M -s /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
fi
