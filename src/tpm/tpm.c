/* The host's TPM through libtss2-esys (see tpm.h). */
#include "tpm/tpm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#ifdef VMCRYPT_TESTPOINTS
#include <stdbool.h>
#endif

struct tpm {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        ESYS_TR ek, ak, srk, bk;
        TPMT_PUBLIC ek_pub, ak_pub;
        attest_pcr_mask bk_mask;
        TPMT_PUBLIC bk_pub;
        char *bk_cache;                        /* directory keeping BKs across processes, or NULL */
        uint8_t bk_policy[ATTEST_DIGEST_SIZE]; /* the PCR policy the loaded BK was made under */
        char error[256];
};

static int tfail(struct tpm *t, int r, TSS2_RC rc, const char *what) {
        snprintf(t->error, sizeof(t->error), "TPM %s failed: %s", what, Tss2_RC_Decode(rc));
        return r;
}

int tpm_open(const char *tcti, struct tpm **ret, char *err, size_t errlen) {
        struct tpm *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ek = t->ak = t->srk = t->bk = ESYS_TR_NONE;
        TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                snprintf(err, errlen, "cannot open the TPM at \"%s\": %s", tcti ? tcti : "(default)", Tss2_RC_Decode(rc));
                free(t);
                return -ENODEV;
        }
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                snprintf(err, errlen, "cannot talk to the TPM at \"%s\": %s", tcti ? tcti : "(default)", Tss2_RC_Decode(rc));
                Tss2_TctiLdr_Finalize(&t->tcti);
                free(t);
                return -ENODEV;
        }
        *ret = t;
        return 0;
}

static void flush(struct tpm *t, ESYS_TR *h) {
        if (*h != ESYS_TR_NONE)
                (void) Esys_FlushContext(t->esys, *h);
        *h = ESYS_TR_NONE;
}

void tpm_free(struct tpm *t) {
        if (!t)
                return;
        flush(t, &t->bk);
        flush(t, &t->srk);
        flush(t, &t->ak);
        flush(t, &t->ek);
        Esys_Finalize(&t->esys);
        Tss2_TctiLdr_Finalize(&t->tcti);
        free(t->bk_cache);
        free(t);
}

const char *tpm_error(const struct tpm *t) {
        return t->error;
}

/* The TCG EK Credential Profile's default RSA template (L-1), so that the EK is the
 * one an EK certificate in NV describes. */
static const uint8_t ek_policy[32] = {
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
        0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

static int create_primary(struct tpm *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl, ESYS_TR *ret,
                          TPMT_PUBLIC *ret_pub, const char *what) {
        TPM2B_SENSITIVE_CREATE sens = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION none = {};
        TPM2B_PUBLIC *pub = NULL;
        TSS2_RC rc = Esys_CreatePrimary(t->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, tmpl,
                                        &outside, &none, ret, &pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, what);
        if (ret_pub)
                *ret_pub = pub->publicArea;
        Esys_Free(pub);
        return 0;
}

static int ensure_ek(struct tpm *t) {
        if (t->ek != ESYS_TR_NONE)
                return 0;
        TPM2B_PUBLIC tmpl = { .publicArea = {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
                .authPolicy = { .size = 32 },
                .parameters.rsaDetail = {
                        .symmetric = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB },
                        .scheme = { .scheme = TPM2_ALG_NULL },
                        .keyBits = 2048,
                        .exponent = 0,
                },
                .unique.rsa = { .size = 256 },
        } };
        memcpy(tmpl.publicArea.authPolicy.buffer, ek_policy, 32);
        return create_primary(t, ESYS_TR_RH_ENDORSEMENT, &tmpl, &t->ek, &t->ek_pub, "creating the EK");
}

static void ecc_template(TPM2B_PUBLIC *tmpl, TPMA_OBJECT attrs, const char *unique) {
        *tmpl = (TPM2B_PUBLIC) { .publicArea = {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = attrs,
                .parameters.eccDetail = {
                        .symmetric = { .algorithm = TPM2_ALG_NULL },
                        .scheme = { .scheme = TPM2_ALG_NULL },
                        .curveID = TPM2_ECC_NIST_P256,
                        .kdf = { .scheme = TPM2_ALG_NULL },
                },
        } };
        /* A label in unique.x makes these keys ours: another program's primary key
         * with the same attributes is a different key. */
        size_t n = strlen(unique);
        tmpl->publicArea.unique.ecc.x.size = (UINT16) n;
        memcpy(tmpl->publicArea.unique.ecc.x.buffer, unique, n);
}

static int make_ak(struct tpm *t, const char *label, ESYS_TR *ret, TPMT_PUBLIC *ret_pub) {
        TPM2B_PUBLIC tmpl;
        ecc_template(&tmpl, TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH,
                     label);
        tmpl.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        tmpl.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        /* In the endorsement hierarchy: the TPM obfuscates the reset and restart
         * counts in what keys of the owner hierarchy sign, and the server needs the
         * real ones to notice a TPM that was reset or rolled back. */
        return create_primary(t, ESYS_TR_RH_ENDORSEMENT, &tmpl, ret, ret_pub, "creating the AK");
}

static int ensure_ak(struct tpm *t) {
        if (t->ak != ESYS_TR_NONE)
                return 0;
        return make_ak(t, "vmcrypt attestation key", &t->ak, &t->ak_pub);
}

static int ensure_srk(struct tpm *t) {
        if (t->srk != ESYS_TR_NONE)
                return 0;
        TPM2B_PUBLIC tmpl;
        ecc_template(&tmpl, TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA,
                     "vmcrypt storage key");
        tmpl.publicArea.parameters.eccDetail.symmetric =
                (TPMT_SYM_DEF_OBJECT) { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB };
        return create_primary(t, ESYS_TR_RH_OWNER, &tmpl, &t->srk, NULL, "creating the storage key");
}

int tpm_identity(struct tpm *t, TPMT_PUBLIC *ret_ek, TPMT_PUBLIC *ret_ak) {
        int r = ensure_ek(t);
        if (r >= 0)
                r = ensure_ak(t);
        if (r < 0)
                return r;
        *ret_ek = t->ek_pub;
        *ret_ak = t->ak_pub;
        return 0;
}

#define EK_CERT_NV_RSA 0x01c00002
#define NV_CHUNK 512

int tpm_ek_certificate(struct tpm *t, uint8_t **ret, size_t *ret_size) {
        ESYS_TR nv = ESYS_TR_NONE;
        TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, EK_CERT_NV_RSA, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (rc != TSS2_RC_SUCCESS)
                return -ENOENT; /* no such index: no certificate */
        TPM2B_NV_PUBLIC *pub = NULL;
        rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                (void) Esys_TR_Close(t->esys, &nv);
                return tfail(t, -EIO, rc, "reading the EK certificate's NV index");
        }
        size_t size = pub->nvPublic.dataSize, off = 0;
        Esys_Free(pub);
        uint8_t *buf = size ? malloc(size) : NULL;
        int r = buf ? 0 : -ENOENT;
        while (r == 0 && off < size) {
                TPM2B_MAX_NV_BUFFER *data = NULL;
                UINT16 n = (UINT16) (size - off < NV_CHUNK ? size - off : NV_CHUNK);
                rc = Esys_NV_Read(t->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                                  (UINT16) off, &data);
                if (rc != TSS2_RC_SUCCESS || data->size != n) {
                        r = tfail(t, -EIO, rc, "reading the EK certificate");
                        Esys_Free(data);
                        break;
                }
                memcpy(buf + off, data->buffer, n);
                off += n;
                Esys_Free(data);
        }
        (void) Esys_TR_Close(t->esys, &nv);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}

static int policy_session(struct tpm *t, ESYS_TR *ret) {
        TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
        TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, ret);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, "starting a policy session");
        return 0;
}

int tpm_activate(struct tpm *t, const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *secret,
                 struct secret **ret) {
        int r = ensure_ek(t);
        if (r >= 0)
                r = ensure_ak(t);
        if (r < 0)
                return r;
        /* The EK may be used only under PolicySecret(endorsement hierarchy). */
        ESYS_TR s;
        r = policy_session(t, &s);
        if (r < 0)
                return r;
        TSS2_RC rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                       ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
        TPM2B_DIGEST *cert = NULL;
        if (rc == TSS2_RC_SUCCESS)
                rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, s, ESYS_TR_NONE, blob, secret,
                                             &cert);
        flush(t, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EKEYREJECTED, rc, "activating the enrolment credential");
        *ret = secret_new_copy(cert->buffer, cert->size);
        secret_wipe(cert->buffer, cert->size);
        Esys_Free(cert);
        return *ret ? 0 : -ENOMEM;
}

static int read_pcrs(struct tpm *t, attest_pcr_mask mask, struct attest_evidence *ev) {
        ev->n_pcr_values = 0;
        for (int i = 0; i < ATTEST_MAX_PCRS; i++) {
                if (!(mask & (1u << i)))
                        continue;
                TPML_PCR_SELECTION sel, *out = NULL;
                TPML_DIGEST *vals = NULL;
                attest_pcr_selection(1u << i, &sel);
                TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL, &out, &vals);
                if (rc != TSS2_RC_SUCCESS)
                        return tfail(t, -EIO, rc, "reading the PCRs");
                bool ok = vals->count == 1 && vals->digests[0].size == ATTEST_DIGEST_SIZE;
                if (ok)
                        memcpy(ev->pcr_values[ev->n_pcr_values++], vals->digests[0].buffer, ATTEST_DIGEST_SIZE);
                Esys_Free(out);
                Esys_Free(vals);
                if (!ok) {
                        snprintf(t->error, sizeof(t->error), "the TPM has no SHA-256 value for PCR %d", i);
                        return -EOPNOTSUPP;
                }
        }
        return 0;
}

static int quote_with(struct tpm *t, ESYS_TR ak, attest_pcr_mask mask, const uint8_t *q, size_t qn,
                      struct attest_evidence *ev) {
        TPM2B_DATA qual = { .size = (UINT16) qn };
        memcpy(qual.buffer, q, qn);
        TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
        TPML_PCR_SELECTION sel;
        attest_pcr_selection(mask, &sel);
        TPM2B_ATTEST *quoted = NULL;
        TPMT_SIGNATURE *sig = NULL;
        TSS2_RC rc = Esys_Quote(t->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qual, &scheme, &sel, &quoted,
                                &sig);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, "quoting the PCRs");
        ev->quote = *quoted;
        ev->quote_sig = *sig;
        Esys_Free(quoted);
        Esys_Free(sig);
        return read_pcrs(t, mask, ev);
}

int tpm_quote(struct tpm *t, attest_pcr_mask mask, const uint8_t *qualifier, size_t size, struct attest_evidence *ev) {
        if (size > sizeof(((TPM2B_DATA *) 0)->buffer))
                return -EINVAL;
        int r = ensure_ak(t);
        if (r < 0)
                return r;
        return quote_with(t, t->ak, mask, qualifier, size, ev);
}

#ifdef VMCRYPT_TESTPOINTS
/* VMCRYPT_TEST_ATTEST names one way to spoil the evidence, for the refusal tests. */
static bool tamper(const char *what) {
        const char *e = getenv("VMCRYPT_TEST_ATTEST");
        return e && strcmp(e, what) == 0;
}
#else
static inline bool tamper(const char *what) {
        (void) what;
        return false;
}
#endif

/* The BK cache: one file per PCR selection and policy, TPM2B_PUBLIC || TPM2B_PRIVATE
 * (the private part is encrypted by the SRK: only this TPM can load it). A file
 * someone else put there gains them nothing: the KMS checks that the key it
 * certifies is TPM-made, fixedTPM and bound to the policy. */
static int bk_cache_path(const struct tpm *t, attest_pcr_mask mask, const uint8_t policy[static ATTEST_DIGEST_SIZE],
                         char *buf, size_t size) {
        char hex[2 * ATTEST_DIGEST_SIZE + 1];
        for (size_t i = 0; i < ATTEST_DIGEST_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", policy[i]);
        int n = snprintf(buf, size, "%s/bk-%06x-%s", t->bk_cache, mask, hex);
        return n > 0 && (size_t) n < size ? 0 : -ENAMETOOLONG;
}

static void bk_cache_save(struct tpm *t, attest_pcr_mask mask, const uint8_t policy[static ATTEST_DIGEST_SIZE],
                          const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv) {
        char path[4096], tmp[4200];
        uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
        size_t off = 0;
        if (!t->bk_cache || bk_cache_path(t, mask, policy, path, sizeof(path)) < 0 ||
            Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                return;
        snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int) getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return; /* no cache: the next process makes its own */
        bool ok = write(fd, buf, off) == (ssize_t) off && fsync(fd) == 0;
        close(fd);
        if (!ok || rename(tmp, path) < 0)
                (void) unlink(tmp);
}

/* Load a BK made earlier under this policy; false when there is none that loads. */
static bool bk_cache_load(struct tpm *t, attest_pcr_mask mask, const uint8_t policy[static ATTEST_DIGEST_SIZE]) {
        char path[4096];
        uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
        if (!t->bk_cache || bk_cache_path(t, mask, policy, path, sizeof(path)) < 0)
                return false;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof(buf));
        close(fd);
        TPM2B_PUBLIC pub = {};
        TPM2B_PRIVATE priv = {};
        size_t off = 0;
        if (n <= 0 || Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, (size_t) n, &off, &pub) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, (size_t) n, &off, &priv) != TSS2_RC_SUCCESS || off != (size_t) n ||
            pub.publicArea.authPolicy.size != ATTEST_DIGEST_SIZE ||
            memcmp(pub.publicArea.authPolicy.buffer, policy, ATTEST_DIGEST_SIZE) != 0 || ensure_srk(t) < 0)
                return false;
        flush(t, &t->bk);
        TSS2_RC rc = Esys_Load(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &t->bk);
        flush(t, &t->srk);
        if (rc != TSS2_RC_SUCCESS) {
                (void) unlink(path); /* another TPM's, or a cleared one's: make a new one */
                return false;
        }
        t->bk_pub = pub.publicArea;
        t->bk_mask = mask;
        memcpy(t->bk_policy, policy, ATTEST_DIGEST_SIZE);
        return true;
}

void tpm_set_bk_cache(struct tpm *t, const char *dir) {
        free(t->bk_cache);
        t->bk_cache = dir ? strdup(dir) : NULL;
}

static int make_bk(struct tpm *t, attest_pcr_mask mask, const struct attest_evidence *ev, TPMT_PUBLIC *ret_pub) {
        TPM2B_PUBLIC tmpl = { .publicArea = {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                /* No userWithAuth: decryption only through the PCR policy. No
                 * adminWithPolicy: TPM2_Certify (an admin action) with the empty
                 * password. */
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_DECRYPT,
                .authPolicy = { .size = ATTEST_DIGEST_SIZE },
                .parameters.rsaDetail = {
                        .symmetric = { .algorithm = TPM2_ALG_NULL },
                        .scheme = { .scheme = TPM2_ALG_OAEP, .details.oaep.hashAlg = TPM2_ALG_SHA256 },
                        .keyBits = 2048,
                        .exponent = 0,
                },
        } };
        if (tamper("bk-userwithauth"))
                tmpl.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
        attest_pcr_policy(mask, (const uint8_t (*)[ATTEST_DIGEST_SIZE]) ev->pcr_values, ev->n_pcr_values,
                          tmpl.publicArea.authPolicy.buffer);
        TPM2B_SENSITIVE_CREATE sens = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION none = {};
        TPM2B_PRIVATE *priv = NULL;
        TPM2B_PUBLIC *pub = NULL;
        TSS2_RC rc = Esys_Create(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside,
                                 &none, &priv, &pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, "creating the release key");
        if (!tamper("bk-userwithauth"))
                bk_cache_save(t, mask, tmpl.publicArea.authPolicy.buffer, pub, priv);
        flush(t, &t->bk);
        rc = Esys_Load(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &t->bk);
        *ret_pub = pub->publicArea;
        Esys_Free(priv);
        Esys_Free(pub);
        /* A bare swtpm holds three transient objects: keep AK and BK loaded, and a
         * slot free for Certify. */
        flush(t, &t->srk);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, "loading the release key");
        t->bk_mask = mask;
        return 0;
}

int tpm_release_evidence(struct tpm *t, attest_pcr_mask mask, const uint8_t *nonce, size_t nonce_size, const char *uid,
                         struct attest_evidence *ev) {
        flush(t, &t->ek); /* only enrolment needs it; the TPM has few object slots */
        int r = ensure_ak(t);
        if (r < 0)
                return r;
        /* The BK's policy takes the PCR values as they are now; the quote below
         * reports the same values, and the server checks both against the policy. */
        *ev = (struct attest_evidence) {};
        r = read_pcrs(t, mask, ev);
        if (r < 0)
                return r;
        /* Making an RSA key costs the TPM far more than the rest of a release: a BK
         * made under the same PCR values serves every release of this handle (each
         * still certified afresh over its own nonce). */
        uint8_t policy[ATTEST_DIGEST_SIZE];
        attest_pcr_policy(mask, (const uint8_t (*)[ATTEST_DIGEST_SIZE]) ev->pcr_values, ev->n_pcr_values, policy);
        bool have = t->bk != ESYS_TR_NONE && t->bk_mask == mask && memcmp(t->bk_policy, policy, sizeof(policy)) == 0;
        if (!have && !tamper("bk-userwithauth"))
                have = bk_cache_load(t, mask, policy);
        if (have && !tamper("bk-userwithauth"))
                ev->bk = t->bk_pub;
        else {
                flush(t, &t->bk);
                r = ensure_srk(t);
                if (r >= 0)
                        r = make_bk(t, mask, ev, &ev->bk);
                if (r < 0)
                        return r;
                t->bk_pub = ev->bk;
                memcpy(t->bk_policy, policy, sizeof(policy));
        }
        TPM2B_NAME name;
        r = attest_name(&ev->bk, &name);
        if (r < 0)
                return r;
        uint8_t q[ATTEST_DIGEST_SIZE];
        attest_release_qualifier(nonce, nonce_size, uid, &name, q);
        if (tamper("wrong-nonce"))
                q[0] ^= 1;
        r = quote_with(t, t->ak, mask, q, sizeof(q), ev);
        if (r < 0)
                return r;

        ESYS_TR signer = t->ak, other = ESYS_TR_NONE;
        if (tamper("certify-other-ak")) {
                TPMT_PUBLIC pub;
                r = make_ak(t, "not the enrolled attestation key", &other, &pub);
                if (r < 0)
                        return r;
                signer = other;
        }
        TPM2B_DATA qual = { .size = sizeof(q) };
        memcpy(qual.buffer, q, sizeof(q));
        TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
        TPM2B_ATTEST *info = NULL;
        TPMT_SIGNATURE *sig = NULL;
        TSS2_RC rc = Esys_Certify(t->esys, t->bk, signer, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &qual,
                                  &scheme, &info, &sig);
        flush(t, &other);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, "certifying the release key");
        ev->certify = *info;
        ev->certify_sig = *sig;
        Esys_Free(info);
        Esys_Free(sig);
        return 0;
}

int tpm_release_decrypt(struct tpm *t, const uint8_t *wrapped, size_t size, struct secret **ret) {
        if (t->bk == ESYS_TR_NONE)
                return -ENOKEY;
        TPM2B_PUBLIC_KEY_RSA in = {};
        if (size > sizeof(in.buffer)) {
                snprintf(t->error, sizeof(t->error), "the released secret is not wrapped to this TPM's key");
                return -EBADMSG;
        }
        in.size = (UINT16) size;
        memcpy(in.buffer, wrapped, size);
        ESYS_TR s;
        int r = policy_session(t, &s);
        if (r < 0)
                return r;
        TPM2B_DIGEST now = {}; /* empty: the PCRs' current values */
        TPML_PCR_SELECTION sel;
        attest_pcr_selection(t->bk_mask, &sel);
        TSS2_RC rc = Esys_PolicyPCR(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &now, &sel);
        TPMT_RSA_DECRYPT scheme = { .scheme = TPM2_ALG_OAEP, .details.oaep.hashAlg = TPM2_ALG_SHA256 };
        TPM2B_DATA label = {};
        TPM2B_PUBLIC_KEY_RSA *out = NULL;
        if (rc == TSS2_RC_SUCCESS)
                rc = Esys_RSA_Decrypt(t->esys, t->bk, s, ESYS_TR_NONE, ESYS_TR_NONE, &in, &scheme, &label, &out);
        flush(t, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tfail(t, -EIO, rc, "decrypting the released secret (PCRs changed, or not for this TPM)");
        *ret = secret_new_copy(out->buffer, out->size);
        secret_wipe(out->buffer, out->size);
        Esys_Free(out);
        return *ret ? 0 : -ENOMEM;
}
