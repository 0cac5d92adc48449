#!/usr/bin/env bash
# The programs hold keys in memory: each must be linked with full RELRO, i.e. with
# BIND_NOW (every symbol resolved at start, -z now) and a GNU_RELRO segment (the GOT
# made read-only afterwards, -z relro), so a memory-safety bug cannot redirect a
# library call through a writable GOT entry.
# Usage: hardening.sh PROGRAM...
set -euo pipefail
command -v readelf >/dev/null || { echo "FAIL: readelf not found (binutils)"; exit 1; }
[ $# -gt 0 ] || { echo "usage: $0 PROGRAM..."; exit 2; }
for p in "$@"; do
  dyn=$(readelf -d -W "$p")
  grep -Eq '\(BIND_NOW\)|\(FLAGS\).*\bBIND_NOW\b|\(FLAGS_1\).*\bNOW\b' <<<"$dyn" ||
    { echo "FAIL: $p is not linked with -z now (no BIND_NOW in its dynamic section)"; exit 1; }
  readelf -l -W "$p" | grep -q 'GNU_RELRO' ||
    { echo "FAIL: $p has no GNU_RELRO segment (-z relro)"; exit 1; }
  echo "ok: $(basename "$p"): full RELRO (BIND_NOW, GNU_RELRO)"
done
