#!/usr/bin/env bash
# The SQLite WAL stays bounded while Creates keep coming: checkpoints copy it into
# the database as the server runs (they once copied nothing, and the WAL grew by
# every commit: 1.1 GB after 530k Creates, the database still 4 KiB). About 20,000
# durable Creates from 16 connections; the -wal file is sampled every 0.1 s.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
LOAD="${VMCRYPT_BUILD:?}/bench/kms-load"
[ -x "$LOAD" ] || { echo "FAIL: $LOAD not built"; exit 1; }
CREATES=${KMS_WAL_CREATES:-20000}
BOUND_MIB=${KMS_WAL_BOUND_MIB:-40}  # the server aims at 32 MiB; a second of growth more
kms_init "$KMS_TMP/s" load
kms_start "$KMS_TMP/s"
DB="$KMS_TMP/s/kms.db"

( max=0
  while kill -0 "$KMS_PID" 2>/dev/null; do
    w=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)
    [ "$w" -gt "$max" ] && { max=$w; echo "$max" > "$KMS_TMP/walmax"; }
    sleep 0.1
  done ) &
SAMPLER=$!

done_n=0 rounds=0
while [ "$done_n" -lt "$CREATES" ] && [ "$rounds" -lt 30 ]; do
  out=$("$LOAD" --cert "$KMS_TMP/s/client-load.crt" --key "$KMS_TMP/s/client-load.key" \
        --ca "$KMS_TMP/s/ca.crt" --port "$KMS_PORT" --conns 16 --seconds 2 --mix create)
  n=$(sed -n 's/.* create=\([0-9]*\).*/\1/p' <<<"$out")
  errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
  [ "$errs" = 0 ] || { echo "FAIL: load generator saw errors: $out"; exit 1; }
  done_n=$((done_n + n)); rounds=$((rounds + 1))
done
sleep 1.5  # a checkpoint round after the last commit
walmax=$(cat "$KMS_TMP/walmax" 2>/dev/null || echo 0)
db=$(stat -c %s "$DB")
wal=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)
kill "$SAMPLER" 2>/dev/null || true
echo "creates=$done_n wal_max=$((walmax >> 10)) KiB wal_end=$((wal >> 10)) KiB db=$((db >> 10)) KiB"
[ "$done_n" -ge "$CREATES" ] || { echo "FAIL: only $done_n Creates in $rounds rounds"; exit 1; }
[ "$walmax" -le $((BOUND_MIB << 20)) ] ||
  { echo "FAIL: the WAL reached $((walmax >> 20)) MiB (bound $BOUND_MIB MiB): not checkpointed"; exit 1; }
# Each Create's row is a few hundred bytes: most must be in the database file itself.
[ "$db" -ge $((done_n * 200)) ] ||
  { echo "FAIL: database file only $db bytes after $done_n Creates: the WAL was not copied"; exit 1; }
echo "ok: WAL at most $((walmax >> 20)) MiB over $done_n Creates; database grew to $((db >> 20)) MiB"
kms_stop
