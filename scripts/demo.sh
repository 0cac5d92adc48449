#!/usr/bin/env bash
# vmcrypt's main job on embedded defaults, narrated: a VM disk image with known
# content is encrypted in place into a standard LUKS2 volume, its status is read from
# the disk, cryptsetup proves it is real LUKS, and it is decrypted back to the exact
# same bytes. Exits non-zero if any step fails. Idempotent: demo-work/ is rebuilt.
#
# Usage: scripts/demo.sh      (from anywhere; installs Debian packages if missing)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$ROOT/demo-work
STEP=0
trap 'echo; echo "DEMO FAILED in step $STEP (line $LINENO: $BASH_COMMAND)" >&2' ERR

step() {
        STEP=$((STEP + 1))
        echo
        echo "=== Step $STEP: $*"
}
say() { echo "    $*"; }
run() { echo "  \$ $*"; "$@"; }
fail() { echo "DEMO FAILED in step $STEP: $*" >&2; exit 1; }

# Without root, cryptsetup cannot take its locks in /run/cryptsetup; files need none.
CS_LOCKS=()
[ "$(id -u)" = 0 ] || CS_LOCKS=(--disable-locks)

step "install packages and build vmcrypt (meson build/)"
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
VMCRYPT=$ROOT/build/src/cli/vmcrypt
run "$VMCRYPT" --version

step "make a 256 MiB VM disk image: an ext4 filesystem with a few files"
rm -rf "$W"
mkdir -p "$W/files/etc"
echo "Hello from inside the VM disk. This line is the demo's canary." >"$W/files/hello.txt"
printf 'hostname=demo-vm\nrole=database\n' >"$W/files/etc/vm.conf"
head -c $((32 << 20)) /dev/urandom >"$W/files/database.bin"
mkfs.ext4 -q -F -L demo-disk -d "$W/files" "$W/disk.img" 256M
ORIG_SHA=$(sha256sum "$W/disk.img" | cut -d' ' -f1)
ORIG_SIZE=$(stat -c %s "$W/disk.img")
say "disk.img: $ORIG_SIZE bytes, sha256 $ORIG_SHA"
grep -q "demo's canary" "$W/disk.img" || fail "the canary text is not in the plain image"
say "the canary text is readable in the raw image, as on any unencrypted disk"

step "encrypt it in place (LUKS2, header in front, new random key file)"
run "$VMCRYPT" disk encrypt --progress bar --new-key-file "$W/disk.key" "$W/disk.img"
say "key file: $(stat -c '%n, %s bytes, mode %a' "$W/disk.key")"
say "image: $(stat -c %s "$W/disk.img") bytes (grew by the 16 MiB LUKS2 header area)"
if grep -q "demo's canary" "$W/disk.img"; then fail "the canary text is still readable after encryption"; fi
say "the canary text is gone from the raw image"

step "ask vmcrypt for the disk's status (read from the disk itself)"
run "$VMCRYPT" disk status "$W/disk.img"
echo "  \$ $VMCRYPT disk status --json $W/disk.img"
"$VMCRYPT" disk status --json "$W/disk.img" | tee "$W/status.json"
/usr/bin/python3 - "$W/status.json" <<'EOF' || fail "status --json does not say encrypted luks2"
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d["state"] == "encrypted" and d["format"] == "luks2" else 1)
EOF

step "prove it is a real LUKS volume with cryptsetup (no vmcrypt involved)"
echo "  \$ cryptsetup luksDump $W/disk.img   (up to the keyslots)"
cryptsetup luksDump "${CS_LOCKS[@]}" "$W/disk.img" | sed -n '1,/^Keyslots:/p'
run cryptsetup open "${CS_LOCKS[@]}" --test-passphrase --key-file "$W/disk.key" "$W/disk.img"
say "cryptsetup accepts the key: any Linux host can open this disk without vmcrypt"
head -c 32 /dev/urandom >"$W/wrong.key"
if cryptsetup open "${CS_LOCKS[@]}" --test-passphrase --key-file "$W/wrong.key" "$W/disk.img" 2>/dev/null; then
        fail "cryptsetup accepted a wrong key"
fi
say "and refuses a wrong key"

step "decrypt it in place and check every byte"
run "$VMCRYPT" disk decrypt --progress bar --key-file "$W/disk.key" "$W/disk.img"
NEW_SHA=$(sha256sum "$W/disk.img" | cut -d' ' -f1)
NEW_SIZE=$(stat -c %s "$W/disk.img")
say "disk.img: $NEW_SIZE bytes, sha256 $NEW_SHA"
[ "$NEW_SIZE" = "$ORIG_SIZE" ] || fail "size $NEW_SIZE differs from the original $ORIG_SIZE"
[ "$NEW_SHA" = "$ORIG_SHA" ] || fail "sha256 differs from the original"
say "identical to the original image"
run debugfs -R "cat /hello.txt" "$W/disk.img" 2>/dev/null

echo
echo "DEMO OK: encrypted in place, verified by cryptsetup, decrypted to the same sha256."
