#!/usr/bin/env bash
# The vCenter 7.0.3 request sequence (KMIP 1.1) replayed as raw TTLV, plus protocol
# edge cases (versions, batches, placeholders) and server-side key wrapping.
set -euo pipefail
. "$(dirname "$0")/kms-lib.sh"
kms_init "$KMS_TMP/s" vcenter
kms_start "$KMS_TMP/s"
"$PY" "$(dirname "$0")/kms-vcenter.py" "$KMS_PORT" "$KMS_TMP/s" vcenter
kms_stop
# Again with RSA certificates and the suite vCenter 7.0.3 negotiated (TLS 1.2,
# AES128-SHA256: RSA key exchange, which needs an RSA server key and, having no
# forward secrecy, is off unless tls-ciphers names it; kms-ciphers.sh checks that).
"$VMCRYPT_KMS" init "$KMS_TMP/r" --client vcenter --key-type rsa --listen 127.0.0.1:0 >/dev/null
echo "tls-ciphers = ECDHE+AESGCM:ECDHE+AES+SHA256:AES128-SHA256" >> "$KMS_TMP/r/kms.conf"
kms_start "$KMS_TMP/r"
"$PY" "$(dirname "$0")/kms-vcenter.py" "$KMS_PORT" "$KMS_TMP/r" vcenter AES128-SHA256 | grep -E 'TLS 1.2|replay'
kms_stop
