/* TPM structures checked in software: names, keys, PCR policies, MakeCredential and
 * the verification of quotes and certifications (see attest.h). Every length read
 * from the wire is bounded by libtss2-mu's unmarshalling of fixed-size types. */
#include "attest/attest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "shared/macro.h"

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        if (err && errlen) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

static void sha256(const void *a, size_t na, const void *b, size_t nb, uint8_t out[static 32]) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned n = 32;
        if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(c, a, na) != 1 ||
            (nb && EVP_DigestUpdate(c, b, nb) != 1) || EVP_DigestFinal_ex(c, out, &n) != 1)
                abort(); /* SHA-256 failing is not something to carry on from */
        EVP_MD_CTX_free(c);
}

int attest_name(const TPMT_PUBLIC *pub, TPM2B_NAME *ret) {
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t off = 0;
        if (pub->nameAlg != TPM2_ALG_SHA256)
                return -EOPNOTSUPP;
        if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                return -EINVAL;
        ret->size = 2 + 32;
        ret->name[0] = (uint8_t) (TPM2_ALG_SHA256 >> 8);
        ret->name[1] = (uint8_t) TPM2_ALG_SHA256;
        sha256(buf, off, NULL, 0, ret->name + 2);
        return 0;
}

static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        EVP_PKEY *k = NULL;
        int r = -EINVAL;
        if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) == 1) {
                *ret = k;
                r = 0;
        }
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        return r;
}

int attest_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret) {
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (!bld)
                return -ENOMEM;
        int r = -EOPNOTSUPP;
        if (pub->type == TPM2_ALG_RSA) {
                const TPM2B_PUBLIC_KEY_RSA *m = &pub->unique.rsa;
                uint32_t e = pub->parameters.rsaDetail.exponent ? pub->parameters.rsaDetail.exponent : 65537;
                BIGNUM *n = BN_bin2bn(m->buffer, m->size, NULL), *be = BN_new();
                if (pub->parameters.rsaDetail.keyBits == 2048 && m->size == 256 && n && be && BN_set_word(be, e) &&
                    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
                    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
                        r = pkey_from_params("RSA", bld, ret);
                BN_free(n);
                BN_free(be);
        } else if (pub->type == TPM2_ALG_ECC && pub->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) {
                const TPMS_ECC_POINT *p = &pub->unique.ecc;
                uint8_t pt[65] = { 0x04 };
                if (p->x.size == 32 && p->y.size == 32) {
                        memcpy(pt + 1, p->x.buffer, 32);
                        memcpy(pt + 33, p->y.buffer, 32);
                        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
                            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
                                r = pkey_from_params("EC", bld, ret);
                        else
                                r = -EINVAL;
                } else
                        r = -EINVAL;
        }
        OSSL_PARAM_BLD_free(bld);
        return r;
}

int attest_public_parse(const uint8_t *buf, size_t size, TPMT_PUBLIC *ret) {
        TPM2B_PUBLIC p = {};
        size_t off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, size, &off, &p) != TSS2_RC_SUCCESS || off != size)
                return -EBADMSG;
        *ret = p.publicArea;
        return 0;
}

int attest_public_marshal(const TPMT_PUBLIC *pub, uint8_t **ret, size_t *ret_size) {
        TPM2B_PUBLIC p = { .publicArea = *pub };
        uint8_t *buf = malloc(sizeof(TPM2B_PUBLIC));
        size_t off = 0;
        if (!buf)
                return -ENOMEM;
        if (Tss2_MU_TPM2B_PUBLIC_Marshal(&p, buf, sizeof(TPM2B_PUBLIC), &off) != TSS2_RC_SUCCESS) {
                free(buf);
                return -EINVAL;
        }
        *ret = buf;
        *ret_size = off;
        return 0;
}

void attest_pcr_selection(attest_pcr_mask mask, TPML_PCR_SELECTION *ret) {
        *ret = (TPML_PCR_SELECTION) { .count = 1 };
        ret->pcrSelections[0].hash = TPM2_ALG_SHA256;
        ret->pcrSelections[0].sizeofSelect = 3;
        for (int i = 0; i < ATTEST_MAX_PCRS; i++)
                if (mask & (1u << i))
                        ret->pcrSelections[0].pcrSelect[i / 8] |= (uint8_t) (1u << (i % 8));
}

int attest_pcr_mask_of(const TPML_PCR_SELECTION *sel, attest_pcr_mask *ret) {
        attest_pcr_mask m = 0;
        bool seen = false;
        for (uint32_t k = 0; k < sel->count && k < TPM2_NUM_PCR_BANKS; k++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[k];
                bool empty = true;
                for (unsigned b = 0; b < s->sizeofSelect && b < sizeof(s->pcrSelect); b++)
                        if (s->pcrSelect[b])
                                empty = false;
                if (empty)
                        continue;
                if (s->hash != TPM2_ALG_SHA256 || seen)
                        return -EINVAL;
                seen = true;
                for (unsigned b = 0; b < s->sizeofSelect && b < sizeof(s->pcrSelect); b++)
                        for (int i = 0; i < 8; i++)
                                if (s->pcrSelect[b] & (1u << i)) {
                                        if (b * 8 + (unsigned) i >= ATTEST_MAX_PCRS)
                                                return -EINVAL;
                                        m |= 1u << (b * 8 + (unsigned) i);
                                }
        }
        if (sel->count > TPM2_NUM_PCR_BANKS)
                return -EINVAL;
        *ret = m;
        return 0;
}

void attest_pcr_digest(const uint8_t (*values)[ATTEST_DIGEST_SIZE], size_t n, uint8_t ret[static ATTEST_DIGEST_SIZE]) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned len = 32;
        if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
                abort();
        for (size_t i = 0; i < n; i++)
                if (EVP_DigestUpdate(c, values[i], ATTEST_DIGEST_SIZE) != 1)
                        abort();
        if (EVP_DigestFinal_ex(c, ret, &len) != 1)
                abort();
        EVP_MD_CTX_free(c);
}

void attest_pcr_policy(attest_pcr_mask mask, const uint8_t (*values)[ATTEST_DIGEST_SIZE], size_t n,
                       uint8_t ret[static ATTEST_DIGEST_SIZE]) {
        /* policyDigest' = H(policyDigest || TPM_CC_PolicyPCR || pcrs || H(values)),
         * from a policy of 32 zero bytes (TPM 2.0 part 3, PolicyPCR). */
        uint8_t buf[32 + 4 + sizeof(TPML_PCR_SELECTION) + 32] = {};
        size_t off = 32;
        buf[off++] = 0;
        buf[off++] = 0;
        buf[off++] = (uint8_t) (TPM2_CC_PolicyPCR >> 8);
        buf[off++] = (uint8_t) TPM2_CC_PolicyPCR;
        TPML_PCR_SELECTION sel;
        attest_pcr_selection(mask, &sel);
        if (Tss2_MU_TPML_PCR_SELECTION_Marshal(&sel, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                abort();
        attest_pcr_digest(values, n, buf + off);
        off += 32;
        sha256(buf, off, NULL, 0, ret);
}

int attest_pcr_mask_parse(const char *s, attest_pcr_mask *ret) {
        attest_pcr_mask m = 0;
        const char *p = s;
        if (!s || !*s)
                return -EINVAL;
        for (;;) {
                char *end;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned long v = strtoul(p, &end, 10);
                if (end == p || v >= ATTEST_MAX_PCRS || (m & (1u << v)))
                        return -EINVAL;
                m |= 1u << v;
                if (*end == '\0')
                        break;
                if (*end != ',')
                        return -EINVAL;
                p = end + 1;
        }
        *ret = m;
        return 0;
}

void attest_pcr_mask_format(attest_pcr_mask mask, char *buf, size_t size) {
        size_t off = 0;
        buf[0] = '\0';
        for (int i = 0; i < ATTEST_MAX_PCRS && off < size; i++)
                if (mask & (1u << i))
                        off += (size_t) snprintf(buf + off, size - off, "%s%d", off ? "," : "", i);
}

/* KDFa (TPM 2.0 part 1, 11.4.10.2) with HMAC-SHA-256 in counter mode. */
static int kdfa(const uint8_t *key, size_t key_size, const char *label, const uint8_t *ctx_u, size_t nu,
                uint8_t *out, size_t bits) {
        size_t bytes = bits / 8;
        uint8_t block[32];
        for (uint32_t i = 1, done = 0; done < bytes; i++) {
                uint8_t ctr[4] = { (uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i };
                uint8_t len[4] = { (uint8_t) (bits >> 24), (uint8_t) (bits >> 16), (uint8_t) (bits >> 8), (uint8_t) bits };
                unsigned n = 32;
                EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
                EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
                OSSL_PARAM p[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                                   OSSL_PARAM_construct_end() };
                size_t outl = 0;
                int ok = c && EVP_MAC_init(c, key, key_size, p) == 1 && EVP_MAC_update(c, ctr, 4) == 1 &&
                         EVP_MAC_update(c, (const uint8_t *) label, strlen(label) + 1) == 1 &&
                         (!nu || EVP_MAC_update(c, ctx_u, nu) == 1) && EVP_MAC_update(c, len, 4) == 1 &&
                         EVP_MAC_final(c, block, &outl, sizeof(block)) == 1;
                EVP_MAC_CTX_free(c);
                EVP_MAC_free(mac);
                if (!ok)
                        return -EIO;
                n = (unsigned) (bytes - done < 32 ? bytes - done : 32);
                memcpy(out + done, block, n);
                done += n;
        }
        OPENSSL_cleanse(block, sizeof(block));
        return 0;
}

static int hmac_sha256(const uint8_t *key, size_t key_size, const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                       uint8_t out[static 32]) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM p[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                           OSSL_PARAM_construct_end() };
        size_t outl = 0;
        int ok = c && EVP_MAC_init(c, key, key_size, p) == 1 && EVP_MAC_update(c, a, na) == 1 &&
                 (!nb || EVP_MAC_update(c, b, nb) == 1) && EVP_MAC_final(c, out, &outl, 32) == 1;
        EVP_MAC_CTX_free(c);
        EVP_MAC_free(mac);
        return ok ? 0 : -EIO;
}

static int rsa_oaep_encrypt(EVP_PKEY *k, const char *label, const uint8_t *in, size_t n, uint8_t *out, size_t *out_n) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        int r = -EIO;
        if (c && EVP_PKEY_encrypt_init(c) == 1 && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
            EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1) {
                bool ok = true;
                if (label) {
                        /* The label includes its terminating zero (TPM 2.0 part 1, B.10.3). */
                        size_t ln = strlen(label) + 1;
                        char *l = OPENSSL_malloc(ln);
                        ok = l && (memcpy(l, label, ln), EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int) ln) == 1);
                        if (!ok)
                                OPENSSL_free(l);
                }
                if (ok && EVP_PKEY_encrypt(c, out, out_n, in, n) == 1)
                        r = 0;
        }
        EVP_PKEY_CTX_free(c);
        return r;
}

int attest_make_credential(const TPMT_PUBLIC *ek, const TPM2B_NAME *name, const uint8_t *secret, size_t secret_size,
                           TPM2B_ID_OBJECT *ret_blob, TPM2B_ENCRYPTED_SECRET *ret_secret) {
        if (ek->type != TPM2_ALG_RSA || ek->nameAlg != TPM2_ALG_SHA256 ||
            ek->parameters.rsaDetail.symmetric.algorithm != TPM2_ALG_AES ||
            ek->parameters.rsaDetail.symmetric.keyBits.aes != 128 ||
            ek->parameters.rsaDetail.symmetric.mode.aes != TPM2_ALG_CFB || secret_size == 0 || secret_size > 32)
                return -EOPNOTSUPP;
        EVP_PKEY *k = NULL;
        int r = attest_pkey(ek, &k);
        if (r < 0)
                return r;
        uint8_t seed[32], sym[16], hkey[32], plain[2 + 32], hmac[32];
        if (RAND_bytes(seed, sizeof(seed)) != 1) {
                EVP_PKEY_free(k);
                return -EIO;
        }
        size_t enc_n = sizeof(ret_secret->secret);
        r = rsa_oaep_encrypt(k, "IDENTITY", seed, sizeof(seed), ret_secret->secret, &enc_n);
        EVP_PKEY_free(k);
        if (r < 0)
                goto out;
        ret_secret->size = (UINT16) enc_n;

        r = kdfa(seed, sizeof(seed), "STORAGE", name->name, name->size, sym, 128);
        if (r < 0)
                goto out;
        r = kdfa(seed, sizeof(seed), "INTEGRITY", NULL, 0, hkey, 256);
        if (r < 0)
                goto out;
        /* The credential as a TPM2B_DIGEST, encrypted with AES-128-CFB, IV zero. */
        plain[0] = (uint8_t) (secret_size >> 8);
        plain[1] = (uint8_t) secret_size;
        memcpy(plain + 2, secret, secret_size);
        size_t plain_n = 2 + secret_size;
        uint8_t *enc = ret_blob->credential + 2 + 32;
        static const uint8_t iv[16];
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int outl = 0, fin = 0;
        if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_cfb(), NULL, sym, iv) != 1 ||
            EVP_EncryptUpdate(c, enc, &outl, plain, (int) plain_n) != 1 || EVP_EncryptFinal_ex(c, enc + outl, &fin) != 1)
                r = -EIO;
        EVP_CIPHER_CTX_free(c);
        if (r < 0)
                goto out;
        r = hmac_sha256(hkey, sizeof(hkey), enc, plain_n, name->name, name->size, hmac);
        if (r < 0)
                goto out;
        ret_blob->credential[0] = 0;
        ret_blob->credential[1] = 32;
        memcpy(ret_blob->credential + 2, hmac, 32);
        ret_blob->size = (UINT16) (2 + 32 + plain_n);
out:
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(sym, sizeof(sym));
        OPENSSL_cleanse(hkey, sizeof(hkey));
        OPENSSL_cleanse(plain, sizeof(plain));
        return r;
}

int attest_check_ak(const TPMT_PUBLIC *ak, char *err, size_t errlen) {
        TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                           TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
        if ((ak->objectAttributes & need) != need || (ak->objectAttributes & TPMA_OBJECT_DECRYPT))
                return fail(err, errlen, -EINVAL,
                            "the AK is not a restricted signing key made in and bound to its TPM");
        if (ak->nameAlg != TPM2_ALG_SHA256)
                return fail(err, errlen, -EINVAL, "the AK's name algorithm is not SHA-256");
        EVP_PKEY *k = NULL;
        int r = attest_pkey(ak, &k);
        EVP_PKEY_free(k);
        if (r < 0)
                return fail(err, errlen, -EINVAL, "the AK is neither RSA-2048 nor ECC P-256");
        return 0;
}

static int verify_signature(const TPMT_PUBLIC *ak, const uint8_t digest[static 32], const TPMT_SIGNATURE *sig) {
        EVP_PKEY *k = NULL;
        int r = attest_pkey(ak, &k);
        if (r < 0)
                return r;
        uint8_t der[128], *pder = der;
        const uint8_t *s = NULL;
        size_t sn = 0;
        int pad = 0;
        r = -EKEYREJECTED;
        if (sig->sigAlg == TPM2_ALG_ECDSA && ak->type == TPM2_ALG_ECC && sig->signature.ecdsa.hash == TPM2_ALG_SHA256) {
                ECDSA_SIG *es = ECDSA_SIG_new();
                BIGNUM *br = BN_bin2bn(sig->signature.ecdsa.signatureR.buffer, sig->signature.ecdsa.signatureR.size, NULL);
                BIGNUM *bs = BN_bin2bn(sig->signature.ecdsa.signatureS.buffer, sig->signature.ecdsa.signatureS.size, NULL);
                if (es && br && bs && ECDSA_SIG_set0(es, br, bs) == 1) {
                        br = bs = NULL;
                        int n = i2d_ECDSA_SIG(es, NULL);
                        if (n > 0 && (size_t) n <= sizeof(der)) {
                                i2d_ECDSA_SIG(es, &pder);
                                s = der;
                                sn = (size_t) n;
                        }
                }
                BN_free(br);
                BN_free(bs);
                ECDSA_SIG_free(es);
        } else if (sig->sigAlg == TPM2_ALG_RSASSA && ak->type == TPM2_ALG_RSA &&
                   sig->signature.rsassa.hash == TPM2_ALG_SHA256) {
                s = sig->signature.rsassa.sig.buffer;
                sn = sig->signature.rsassa.sig.size;
                pad = RSA_PKCS1_PADDING;
        }
        if (s) {
                EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
                if (c && EVP_PKEY_verify_init(c) == 1 && (!pad || EVP_PKEY_CTX_set_rsa_padding(c, pad) == 1) &&
                    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 && EVP_PKEY_verify(c, s, sn, digest, 32) == 1)
                        r = 0;
                EVP_PKEY_CTX_free(c);
        }
        EVP_PKEY_free(k);
        return r;
}

int attest_verify(const TPMT_PUBLIC *ak, const uint8_t *attest, size_t attest_size, const TPMT_SIGNATURE *sig,
                  TPMI_ST_ATTEST type, const uint8_t *extra_data, size_t extra_size, TPMS_ATTEST *ret,
                  char *err, size_t errlen) {
        const char *what = type == TPM2_ST_ATTEST_QUOTE ? "quote" : "certification";
        uint8_t digest[32];
        sha256(attest, attest_size, NULL, 0, digest);
        /* The signature first: nothing else in the structure means anything before. */
        if (verify_signature(ak, digest, sig) < 0)
                return fail(err, errlen, -EKEYREJECTED,
                            "the %s is not signed by the AK enrolled for this host (another TPM, or altered)", what);
        TPMS_ATTEST a = {};
        size_t off = 0;
        if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_size, &off, &a) != TSS2_RC_SUCCESS || off != attest_size)
                return fail(err, errlen, -EBADMSG, "the %s is not a TPMS_ATTEST structure", what);
        if (a.magic != TPM2_GENERATED_VALUE)
                return fail(err, errlen, -EINVAL, "the %s was not generated by a TPM (magic %08x)", what, a.magic);
        if (a.type != type)
                return fail(err, errlen, -EINVAL, "the %s has type %04x, not %04x", what, a.type, type);
        if (a.extraData.size != extra_size || CRYPTO_memcmp(a.extraData.buffer, extra_data, extra_size) != 0)
                return fail(err, errlen, -EINVAL,
                            "the %s is not over this request's nonce (wrong, stale or for another object/key)", what);
        *ret = a;
        return 0;
}

/* ---- evidence on the wire ---- */

int attest_evidence_parse(const uint8_t *m, size_t m_size, const uint8_t *as, size_t a_size,
                          struct attest_evidence *ret) {
        struct attest_evidence ev = {};
        size_t off = 0;
        if (!m || Tss2_MU_TPM2B_ATTEST_Unmarshal(m, m_size, &off, &ev.quote) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPMT_SIGNATURE_Unmarshal(m, m_size, &off, &ev.quote_sig) != TSS2_RC_SUCCESS)
                return -EBADMSG;
        if (off >= m_size)
                return -EBADMSG;
        size_t n = m[off++];
        if (n > ATTEST_MAX_PCRS)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                TPM2B_DIGEST d = {};
                if (Tss2_MU_TPM2B_DIGEST_Unmarshal(m, m_size, &off, &d) != TSS2_RC_SUCCESS || d.size != ATTEST_DIGEST_SIZE)
                        return -EBADMSG;
                memcpy(ev.pcr_values[i], d.buffer, ATTEST_DIGEST_SIZE);
        }
        ev.n_pcr_values = n;
        if (off != m_size)
                return -EBADMSG;
        if (as) {
                TPM2B_PUBLIC bk = {};
                off = 0;
                if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(as, a_size, &off, &bk) != TSS2_RC_SUCCESS ||
                    Tss2_MU_TPM2B_ATTEST_Unmarshal(as, a_size, &off, &ev.certify) != TSS2_RC_SUCCESS ||
                    Tss2_MU_TPMT_SIGNATURE_Unmarshal(as, a_size, &off, &ev.certify_sig) != TSS2_RC_SUCCESS ||
                    off != a_size)
                        return -EBADMSG;
                ev.bk = bk.publicArea;
        }
        *ret = ev;
        return 0;
}

int attest_evidence_build(const struct attest_evidence *ev, bool with_assertion, uint8_t **ret_m, size_t *ret_m_size,
                          uint8_t **ret_a, size_t *ret_a_size) {
        size_t cap = sizeof(TPM2B_ATTEST) + sizeof(TPMT_SIGNATURE) + 1 + ATTEST_MAX_PCRS * (2 + ATTEST_DIGEST_SIZE);
        uint8_t *m = malloc(cap), *a = NULL;
        size_t off = 0, aoff = 0;
        if (!m)
                return -ENOMEM;
        int r = -EINVAL;
        if (ev->n_pcr_values > ATTEST_MAX_PCRS ||
            Tss2_MU_TPM2B_ATTEST_Marshal(&ev->quote, m, cap, &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPMT_SIGNATURE_Marshal(&ev->quote_sig, m, cap, &off) != TSS2_RC_SUCCESS)
                goto fail;
        m[off++] = (uint8_t) ev->n_pcr_values;
        for (size_t i = 0; i < ev->n_pcr_values; i++) {
                TPM2B_DIGEST d = { .size = ATTEST_DIGEST_SIZE };
                memcpy(d.buffer, ev->pcr_values[i], ATTEST_DIGEST_SIZE);
                if (Tss2_MU_TPM2B_DIGEST_Marshal(&d, m, cap, &off) != TSS2_RC_SUCCESS)
                        goto fail;
        }
        if (with_assertion) {
                size_t acap = sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_ATTEST) + sizeof(TPMT_SIGNATURE);
                TPM2B_PUBLIC bk = { .publicArea = ev->bk };
                a = malloc(acap);
                if (!a) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (Tss2_MU_TPM2B_PUBLIC_Marshal(&bk, a, acap, &aoff) != TSS2_RC_SUCCESS ||
                    Tss2_MU_TPM2B_ATTEST_Marshal(&ev->certify, a, acap, &aoff) != TSS2_RC_SUCCESS ||
                    Tss2_MU_TPMT_SIGNATURE_Marshal(&ev->certify_sig, a, acap, &aoff) != TSS2_RC_SUCCESS)
                        goto fail;
        }
        *ret_m = m;
        *ret_m_size = off;
        if (ret_a) {
                *ret_a = a;
                *ret_a_size = aoff;
        } else
                free(a);
        return 0;
fail:
        free(m);
        free(a);
        return r;
}

void attest_release_qualifier(const uint8_t *nonce, size_t nonce_size, const char *uid, const TPM2B_NAME *bk_name,
                              uint8_t ret[static ATTEST_DIGEST_SIZE]) {
        static const char label[] = "vmcrypt attested release v1";
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned n = 32;
        uint8_t ulen[2] = { (uint8_t) (strlen(uid) >> 8), (uint8_t) strlen(uid) };
        if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(c, label, sizeof(label)) != 1 ||
            EVP_DigestUpdate(c, nonce, nonce_size) != 1 || EVP_DigestUpdate(c, ulen, 2) != 1 ||
            EVP_DigestUpdate(c, uid, strlen(uid)) != 1 || EVP_DigestUpdate(c, bk_name->name, bk_name->size) != 1 ||
            EVP_DigestFinal_ex(c, ret, &n) != 1)
                abort();
        EVP_MD_CTX_free(c);
}

void attest_enroll_qualifier(const uint8_t *secret, size_t size, uint8_t ret[static ATTEST_DIGEST_SIZE]) {
        static const char label[] = "vmcrypt enrolment quote v1";
        sha256(label, sizeof(label), secret, size, ret);
}

void attest_enroll_proof(const uint8_t *secret, size_t size, const char *host_id, uint8_t ret[static ATTEST_DIGEST_SIZE]) {
        static const char label[] = "vmcrypt enrolment proof v1";
        if (hmac_sha256(secret, size, (const uint8_t *) label, sizeof(label), (const uint8_t *) host_id,
                        strlen(host_id), ret) < 0)
                abort();
}

int attest_check_bk(const TPMT_PUBLIC *bk, const uint8_t policy[static ATTEST_DIGEST_SIZE], char *err, size_t errlen) {
        TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                           TPMA_OBJECT_DECRYPT;
        if (bk->type != TPM2_ALG_RSA || bk->parameters.rsaDetail.keyBits != 2048 || bk->nameAlg != TPM2_ALG_SHA256)
                return fail(err, errlen, -EINVAL, "the release key is not an RSA-2048 key with SHA-256 names");
        if ((bk->objectAttributes & need) != need)
                return fail(err, errlen, -EINVAL, "the release key is not a decryption key made in and bound to its TPM");
        if (bk->objectAttributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT))
                return fail(err, errlen, -EINVAL, "the release key is restricted or may sign");
        if (bk->objectAttributes & TPMA_OBJECT_USERWITHAUTH)
                return fail(err, errlen, -EINVAL,
                            "the release key may be used with its password (userWithAuth), bypassing its PCR policy");
        if (bk->authPolicy.size != ATTEST_DIGEST_SIZE || CRYPTO_memcmp(bk->authPolicy.buffer, policy, ATTEST_DIGEST_SIZE) != 0)
                return fail(err, errlen, -EINVAL, "the release key is not bound to the policy's PCR values");
        const TPMT_RSA_SCHEME *s = &bk->parameters.rsaDetail.scheme;
        if (s->scheme != TPM2_ALG_NULL && !(s->scheme == TPM2_ALG_OAEP && s->details.oaep.hashAlg == TPM2_ALG_SHA256))
                return fail(err, errlen, -EINVAL, "the release key's scheme is not RSA-OAEP with SHA-256");
        return 0;
}

int attest_wrap_to_bk(const TPMT_PUBLIC *bk, const uint8_t *plain, size_t size, uint8_t **ret, size_t *ret_size) {
        EVP_PKEY *k = NULL;
        int r = attest_pkey(bk, &k);
        if (r < 0)
                return r;
        uint8_t *out = malloc(512);
        size_t n = 512;
        if (!out) {
                EVP_PKEY_free(k);
                return -ENOMEM;
        }
        r = rsa_oaep_encrypt(k, NULL, plain, size, out, &n);
        EVP_PKEY_free(k);
        if (r < 0) {
                free(out);
                return r;
        }
        *ret = out;
        *ret_size = n;
        return 0;
}
