# Shared helpers for the vmcrypt-kms interop tests (sourced, not run).
# kms_start DIR [extra serve args]: runs the server from DIR (made by init) on a free
# port; sets KMS_PID and KMS_PORT. kms_stop: SIGTERM and wait.
set -euo pipefail

: "${VMCRYPT_KMS:?VMCRYPT_KMS must point at the vmcrypt-kms binary}"
PY=/usr/bin/python3
if ! "$PY" -c 'import kmip' 2>/dev/null; then
  echo "FAIL: /usr/bin/python3 cannot import kmip (install python3-pykmip: scripts/deps.sh)" >&2
  exit 1
fi

# Memory bounds in the tests mean little under ASan (its quarantine keeps freed
# memory): relax them there, and say so.
if grep -q __asan_init "$VMCRYPT_KMS" 2>/dev/null; then
  export KMS_RSS_LIMIT_KIB=${KMS_RSS_LIMIT_KIB:-600000}
  echo "note: ASan build, memory limits relaxed to $KMS_RSS_LIMIT_KIB KiB" >&2
fi

KMS_TMP=$(mktemp -d /tmp/kms-test-XXXXXX)
KMS_PID=
cleanup() {
  if [ -n "${KMS_PID:-}" ] && kill -0 "$KMS_PID" 2>/dev/null; then kill -9 "$KMS_PID" 2>/dev/null || true; fi
  rm -rf "$KMS_TMP"
}
trap cleanup EXIT

kms_init() { # dir, clients...
  local dir=$1; shift
  local args=()
  for c in "$@"; do args+=(--client "$c"); done
  "$VMCRYPT_KMS" init "$dir" "${args[@]}" --listen 127.0.0.1:0 >/dev/null
}

kms_start() { # dir, extra args
  local dir=$1; shift
  local out="$KMS_TMP/serve.out"
  : > "$out"
  "$VMCRYPT_KMS" serve --config "$dir/kms.conf" "$@" >"$out" 2>"$KMS_TMP/serve.err" &
  KMS_PID=$!
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$out"; then
      KMS_PORT=$(sed -n 's/^listening on //p' "$out")
      return 0
    fi
    if ! kill -0 "$KMS_PID" 2>/dev/null; then
      echo "FAIL: vmcrypt-kms exited at start:" >&2; cat "$KMS_TMP/serve.err" >&2; exit 1
    fi
    sleep 0.05
  done
  echo "FAIL: vmcrypt-kms did not start listening" >&2; cat "$KMS_TMP/serve.err" >&2; exit 1
}

kms_stop() {
  kill -TERM "$KMS_PID"
  local rc=0
  wait "$KMS_PID" || rc=$?
  KMS_PID=
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: vmcrypt-kms exited with $rc after SIGTERM" >&2; cat "$KMS_TMP/serve.err" >&2; exit 1
  fi
}

kms_kill9() {
  kill -9 "$KMS_PID"; wait "$KMS_PID" 2>/dev/null || true; KMS_PID=
}
