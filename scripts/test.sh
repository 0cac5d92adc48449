#!/usr/bin/env bash
# Builds vmcrypt twice (a plain -Werror build and an ASan+UBSan build) and runs every
# test against the sanitizer build: unit, interop (real cryptsetup, qemu-img, PyKMIP),
# fault injection and short fuzz runs. Installs its own Debian packages first.
# Usage: scripts/test.sh [meson test args, e.g. --suite unit]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

setup() { # dir, extra meson args...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

setup build -Dtestpoints=true
ninja -C build

setup build-san -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true -Dtestpoints=true \
  --native-file scripts/clang.ini
ninja -C build-san

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
meson test -C build-san --print-errorlogs --num-processes 2 "$@"
