/* src/vm's VM home in the domain XML without libvirt: reading a <tpm> and
 * vmcrypt's record, adding both in one document, removing both, telling vmcrypt's
 * TPM from another, refusing damaged records; the <nvram> and its encryption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/macro.h"
#include "vm/home.h"
#include "vm/vtpm.h"

static const char plain[] =
        "<domain type='kvm'><name>a</name><uuid>5eed0000-0000-4000-8000-000000000001</uuid><devices>"
        "<disk type='file' device='disk'><source file='/d/os.img'/><target dev='vda'/></disk>"
        "</devices></domain>";

static void meta_fill(struct vm_vtpm_meta *m) {
        memset(m, 0, sizeof *m);
        snprintf(m->secret_uuid, sizeof m->secret_uuid, "11111111-2222-4333-8444-555555555555");
        snprintf(m->provider, sizeof m->provider, "kms");
        snprintf(m->kek, sizeof m->kek, "kek-1");
        snprintf(m->method, sizeof m->method, "%s", TOKEN_METHOD_RFC5649);
        /* 40 bytes: whole 64-bit blocks, as RFC 5649 output is. */
        snprintf(m->wrapped, sizeof m->wrapped, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==");
        snprintf(m->created, sizeof m->created, "2026-12-06T06:00:00Z");
}

static void test_add_read_remove(void **state) {
        (void) state;
        struct vm_vtpm_xml x;
        assert_int_equal(vm_xml_vtpm(plain, &x), 0);
        assert_false(x.tpm);
        assert_false(x.meta);

        struct vm_vtpm_meta m;
        meta_fill(&m);
        _cleanup_(freep) char *with = NULL;
        assert_int_equal(vm_xml_vtpm_add(plain, "tpm-crb", &m, &with), 0);
        assert_non_null(strstr(with, "<metadata>"));
        assert_int_equal(vm_xml_vtpm(with, &x), 0);
        assert_true(x.tpm);
        assert_string_equal(x.model, "tpm-crb");
        assert_string_equal(x.backend, "emulator");
        assert_string_equal(x.tpm_secret, m.secret_uuid);
        assert_true(x.meta);
        assert_int_equal(x.meta_error, 0);
        assert_string_equal(x.m.kek, "kek-1");
        assert_string_equal(x.m.wrapped, m.wrapped);
        assert_true(vm_vtpm_is_ours(&x));

        /* The record unwraps as a token. */
        _cleanup_(token_freep) struct vmcrypt_token *t = NULL;
        assert_int_equal(vm_vtpm_meta_to_token(&x.m, &t), 0);
        assert_int_equal(t->wrapped_size, 40);
        assert_string_equal(t->kek_id, "kek-1");

        /* A second TPM is refused. */
        _cleanup_(freep) char *twice = NULL;
        assert_int_equal(vm_xml_vtpm_add(with, "tpm-tis", &m, &twice), -EEXIST);

        _cleanup_(freep) char *without = NULL;
        assert_int_equal(vm_xml_vtpm_remove(with, &without), 0);
        assert_int_equal(vm_xml_vtpm(without, &x), 0);
        assert_false(x.tpm);
        assert_false(x.meta);
        assert_null(strstr(without, "metadata"));
        assert_non_null(strstr(without, "/d/os.img"));
}

static void test_foreign_and_damaged(void **state) {
        (void) state;
        struct vm_vtpm_xml x;
        /* A TPM of its own: not vmcrypt's. */
        const char *foreign = "<domain><devices><tpm model='tpm-tis'><backend type='emulator' version='2.0'>"
                              "<encryption secret='99999999-2222-4333-8444-555555555555'/></backend></tpm>"
                              "</devices></domain>";
        assert_int_equal(vm_xml_vtpm(foreign, &x), 0);
        assert_true(x.tpm);
        assert_false(x.meta);
        assert_false(vm_vtpm_is_ours(&x));
        assert_string_equal(x.model, "tpm-tis");

        /* A record whose secret is not the TPM's: edited behind vmcrypt's back. */
        const char *other = "<domain><metadata><v:vtpm xmlns:v='https://vmcrypt.dev/xmlns/vtpm/1' "
                            "secret='11111111-2222-4333-8444-555555555555' provider='kms' kek='k' "
                            "method='rfc5649' wrapped='AAECAwQFBgcICQoLDA0ODw=='/></metadata><devices>"
                            "<tpm model='tpm-crb'><backend type='emulator'><encryption "
                            "secret='99999999-2222-4333-8444-555555555555'/></backend></tpm></devices></domain>";
        assert_int_equal(vm_xml_vtpm(other, &x), 0);
        assert_true(x.meta);
        assert_int_equal(x.meta_error, 0);
        assert_false(vm_vtpm_is_ours(&x));

        /* Damaged records: bad base64, a wrapped size RFC 5649 cannot give, no UUID. */
        const char *bad[] = {
                ("<domain><metadata><v:vtpm xmlns:v='https://vmcrypt.dev/xmlns/vtpm/1' secret='11111111-2222-"
                 "4333-8444-555555555555' provider='kms' kek='k' method='rfc5649' wrapped='!!'/></metadata>"
                 "</domain>"),
                ("<domain><metadata><v:vtpm xmlns:v='https://vmcrypt.dev/xmlns/vtpm/1' secret='11111111-2222-"
                 "4333-8444-555555555555' provider='kms' kek='k' method='rfc5649' wrapped='AAEC'/></metadata>"
                 "</domain>"),
                ("<domain><metadata><v:vtpm xmlns:v='https://vmcrypt.dev/xmlns/vtpm/1' secret='x' provider='kms' "
                 "kek='k' method='rfc5649' wrapped='AAECAwQFBgcICQoLDA0ODw=='/></metadata></domain>"),
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                assert_int_equal(vm_xml_vtpm(bad[i], &x), 0);
                assert_true(x.meta);
                assert_int_equal(x.meta_error, -EBADMSG);
        }
        /* Another namespace's <vtpm> is not vmcrypt's record. */
        assert_int_equal(vm_xml_vtpm("<domain><metadata><v:vtpm xmlns:v='urn:other'/></metadata></domain>", &x), 0);
        assert_false(x.meta);
        assert_int_equal(vm_xml_vtpm("<domain", &x), -EBADMSG);
        assert_int_equal(vm_xml_vtpm("<notdomain/>", &x), -EBADMSG);
}

static void test_nvram(void **state) {
        (void) state;
        struct vm_disk k;
        assert_int_equal(vm_xml_nvram(plain, &k), 0);
        assert_null(k.path);

        /* The older form: the path as the element's text. */
        const char *text = "<domain><os><loader type='pflash'>/c.fd</loader>"
                           "<nvram template='/t.fd'>/v/a_VARS.fd</nvram></os></domain>";
        assert_int_equal(vm_xml_nvram(text, &k), 1);
        assert_string_equal(k.path, "/v/a_VARS.fd");
        assert_string_equal(k.target, "nvram");
        assert_false(k.xml_encrypted);
        vm_disk_clear(&k);

        _cleanup_(freep) char *enc = NULL;
        assert_int_equal(vm_xml_nvram_set_encryption(text, "22222222-2222-4333-8444-555555555555", &enc), 0);
        assert_non_null(strstr(enc, "type=\"file\""));
        assert_non_null(strstr(enc, "engine=\"qemu\""));
        assert_non_null(strstr(enc, "template=\"/t.fd\""));
        assert_int_equal(vm_xml_nvram(enc, &k), 1);
        assert_string_equal(k.path, "/v/a_VARS.fd");
        assert_true(k.xml_encrypted);
        assert_string_equal(k.secret_uuid, "22222222-2222-4333-8444-555555555555");
        vm_disk_clear(&k);

        _cleanup_(freep) char *back = NULL;
        assert_int_equal(vm_xml_nvram_set_encryption(enc, NULL, &back), 0);
        assert_int_equal(vm_xml_nvram(back, &k), 1);
        assert_string_equal(k.path, "/v/a_VARS.fd");
        assert_false(k.xml_encrypted);
        vm_disk_clear(&k);

        /* A network NVRAM has no file to encrypt. */
        const char *net = "<domain><os><nvram type='network'><source protocol='iscsi' name='x'/></nvram></os></domain>";
        assert_int_equal(vm_xml_nvram(net, &k), 1);
        assert_null(k.path);
        _cleanup_(freep) char *no = NULL;
        assert_int_equal(vm_xml_nvram_set_encryption(net, "22222222-2222-4333-8444-555555555555", &no), -EOPNOTSUPP);
        assert_int_equal(vm_xml_nvram_set_encryption(plain, NULL, &no), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_read_remove),
                cmocka_unit_test(test_foreign_and_damaged),
                cmocka_unit_test(test_nvram),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
