/* src/vm without libvirt: the domain XML (which disks, which is the OS disk, the
 * <encryption> edit and its round trip) and the seeds' status of a VM summed up
 * from its disks' states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/macro.h"
#include "vm/vm-internal.h"

static const char xml_boot_order[] =
        "<domain type='kvm'><name>a</name><devices>"
        "<disk type='file' device='cdrom'><source file='/iso'/><target dev='hda'/><readonly/></disk>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/d/data.img'/>"
        "<target dev='vda'/></disk>"
        "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/sdb'/>"
        "<target dev='vdb'/><boot order='2'/></disk>"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/d/q.qcow2'/>"
        "<target dev='vdc'/><boot order='1'/></disk>"
        "<disk type='network' device='disk'><source protocol='nbd' name='x'/><target dev='vdd'/></disk>"
        "</devices></domain>";

static void free_disks(struct vm_disk *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(d[i].path);
        free(d);
}

static void test_disks_and_os_disk(void **state) {
        (void) state;
        struct vm_disk *d;
        size_t n;
        assert_int_equal(vm_xml_disks(xml_boot_order, &d, &n), 0);
        assert_int_equal(n, 4); /* the cdrom is not a volume */
        assert_string_equal(d[0].target, "vda");
        assert_string_equal(d[0].path, "/d/data.img");
        assert_string_equal(d[1].source_type, "block");
        assert_string_equal(d[1].path, "/dev/sdb");
        assert_string_equal(d[2].format, "qcow2");
        assert_null(d[3].path);
        /* The lowest boot order wins, wherever it is. */
        assert_false(d[0].os);
        assert_false(d[1].os);
        assert_true(d[2].os);
        free_disks(d, n);

        /* No boot order: the first disk. */
        const char *x = "<domain><devices><disk type='file'><source file='/a'/><target dev='sda'/></disk>"
                        "<disk type='file'><source file='/b'/><target dev='sdb'/></disk></devices></domain>";
        assert_int_equal(vm_xml_disks(x, &d, &n), 0);
        assert_int_equal(n, 2);
        assert_true(d[0].os);
        assert_false(d[1].os);
        free_disks(d, n);
}

static void test_bad_xml(void **state) {
        (void) state;
        struct vm_disk *d;
        size_t n;
        assert_int_equal(vm_xml_disks("<domain><devices>", &d, &n), -EBADMSG);
        assert_int_equal(vm_xml_disks("", &d, &n), -EBADMSG);
        /* Another root: no disks, no error. */
        assert_int_equal(vm_xml_disks("<network/>", &d, &n), 0);
        assert_int_equal(n, 0);
        free_disks(d, n);
        /* Only attributes without a namespace count, as libvirt reads them: a
         * namespaced "file" is not the disk's path, and a long value is whole or
         * not at all. */
        const char *ns = "<domain><devices><disk type='file'><source xmlns:x='urn:x' x:file='/evil' file='/real'/>"
                         "<target x:dev='vdz' dev='vda'/></disk><disk type='file'><source xmlns:x='urn:x' "
                         "x:file='/evil'/><target dev='vdb'/></disk></devices></domain>";
        assert_int_equal(vm_xml_disks(ns, &d, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(d[0].path, "/real");
        assert_string_equal(d[0].target, "vda");
        assert_null(d[1].path);
        free_disks(d, n);
        /* No external entities: the parser must not read files. */
        const char *xxe = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                          "<domain><devices><disk type='file'><source file='&x;'/><target dev='vda'/></disk>"
                          "</devices></domain>";
        if (vm_xml_disks(xxe, &d, &n) == 0) {
                if (n == 1 && d[0].path)
                        assert_null(strstr(d[0].path, "root:"));
                free_disks(d, n);
        }
}

static void test_set_and_remove_encryption(void **state) {
        (void) state;
        const char *uuid = "6a1f3c2e-0000-4000-8000-000000000001";
        _cleanup_(freep) char *with = NULL, *again = NULL, *without = NULL;
        assert_int_equal(vm_xml_set_encryption(xml_boot_order, "vdb", uuid, &with), 0);
        struct vm_disk *d;
        size_t n;
        assert_int_equal(vm_xml_disks(with, &d, &n), 0);
        assert_true(d[1].xml_encrypted);
        assert_string_equal(d[1].secret_uuid, uuid);
        assert_false(d[0].xml_encrypted);
        assert_string_equal(d[1].path, "/dev/sdb"); /* the source is kept */
        free_disks(d, n);
        assert_non_null(strstr(with, "<encryption format=\"luks\"><secret type=\"passphrase\""));

        /* Setting again replaces: one <encryption>, the new secret. */
        assert_int_equal(vm_xml_set_encryption(with, "vdb", "6a1f3c2e-0000-4000-8000-000000000002", &again), 0);
        const char *first = strstr(again, "<encryption");
        assert_non_null(first);
        assert_null(strstr(first + 1, "<encryption"));
        assert_non_null(strstr(again, "000000000002"));

        assert_int_equal(vm_xml_set_encryption(again, "vdb", NULL, &without), 0);
        assert_null(strstr(without, "<encryption"));
        char *none = NULL;
        assert_int_equal(vm_xml_set_encryption(xml_boot_order, "vdz", uuid, &none), -ENOENT);
        /* The cdrom is not a disk vmcrypt edits. */
        assert_int_equal(vm_xml_set_encryption(xml_boot_order, "hda", uuid, &none), -ENOENT);
        assert_null(none);
}

static void test_legacy_encryption_position(void **state) {
        (void) state;
        /* libvirt before 6.10 kept <encryption> under <disk>; it counts too, and an
         * edit leaves only the new one. */
        const char *x = "<domain><devices><disk type='file' device='disk'><source file='/a'/>"
                        "<encryption format='luks'><secret type='passphrase' uuid='u1'/></encryption>"
                        "<target dev='vda'/></disk></devices></domain>";
        struct vm_disk *d;
        size_t n;
        assert_int_equal(vm_xml_disks(x, &d, &n), 0);
        assert_true(d[0].xml_encrypted);
        assert_string_equal(d[0].secret_uuid, "u1");
        free_disks(d, n);
        _cleanup_(freep) char *out = NULL;
        assert_int_equal(vm_xml_set_encryption(x, "vda", "u2", &out), 0);
        assert_null(strstr(out, "u1"));
        assert_non_null(strstr(out, "u2"));
}

static void test_metadata(void **state) {
        (void) state;
        struct vm_meta m = { .auto_encrypt = true, .rekey_deep = true };
        snprintf(m.rekey_provider, sizeof m.rekey_provider, "lab");
        snprintf(m.rekey_kek, sizeof m.rekey_kek, "k<&'\"1");
        _cleanup_(freep) char *el = NULL;
        assert_int_equal(vm_xml_meta_element(&m, &el), 0);
        assert_non_null(el);
        /* What libvirt stores: the element in vmcrypt's namespace under <metadata>. */
        assert_int_equal(strncmp(el, "<vm ", 4), 0);
        char xml[2048];
        snprintf(xml, sizeof xml, "<domain><metadata><other xmlns='urn:x'><vm auto-encrypt='off'/></other>"
                 "<v:vm xmlns:v='%s' %.*s</v:vm></metadata><devices/></domain>", VM_META_NS,
                 (int) (strlen(el) - 4 - strlen("</vm>")), el + 4);
        struct vm_meta back;
        assert_int_equal(vm_xml_meta(xml, &back), 0);
        assert_true(back.auto_encrypt);
        assert_true(back.rekey_deep);
        assert_string_equal(back.rekey_provider, "lab");
        assert_string_equal(back.rekey_kek, "k<&'\"1");

        /* Nothing to keep: no element (libvirt removes it). */
        struct vm_meta off = { 0 };
        _cleanup_(freep) char *none = NULL;
        assert_int_equal(vm_xml_meta_element(&off, &none), 0);
        assert_null(none);
        /* Another namespace's <vm>, or none at all: all off. */
        assert_int_equal(vm_xml_meta("<domain><metadata><vm auto-encrypt='on'/></metadata></domain>", &back), 0);
        assert_false(back.auto_encrypt);
        assert_int_equal(vm_xml_meta("<domain/>", &back), 0);
        assert_false(back.auto_encrypt);
        assert_int_equal(vm_xml_meta("<domain", &back), -EBADMSG);
}

static void test_disk_new(void **state) {
        (void) state;
        _cleanup_(freep) char *x = NULL;
        assert_int_equal(vm_xml_disk_new("/d/a&b.img", "vdc", "6a1f3c2e-0000-4000-8000-000000000001", &x), 0);
        char dom[2048];
        snprintf(dom, sizeof dom, "<domain><devices>%s</devices></domain>", x);
        struct vm_disk *d;
        size_t n;
        assert_int_equal(vm_xml_disks(dom, &d, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(d[0].path, "/d/a&b.img");
        assert_string_equal(d[0].target, "vdc");
        assert_string_equal(d[0].format, "raw");
        assert_true(d[0].xml_encrypted);
        assert_string_equal(d[0].secret_uuid, "6a1f3c2e-0000-4000-8000-000000000001");
        free_disks(d, n);
        _cleanup_(freep) char *plain = NULL;
        assert_int_equal(vm_xml_disk_new("/d/p.img", "vdd", NULL, &plain), 0);
        assert_null(strstr(plain, "encryption"));
}

static struct vm_domain domain(struct vm_disk *disks, size_t n) {
        struct vm_domain d = { .disks = disks, .n_disks = n };
        snprintf(d.name, sizeof d.name, "t");
        vm_summarize(&d);
        return d;
}

static void test_summary(void **state) {
        (void) state;
        struct vm_disk k[3] = { { .os = true, .state = VM_DISK_PLAIN }, { .state = VM_DISK_PLAIN } };
        struct vm_domain d = domain(k, 2);
        assert_int_equal(d.summary.os, VM_NOT_ENCRYPTED);
        assert_int_equal(d.summary.data, VM_NOT_ENCRYPTED);
        assert_string_equal(d.summary.message, "Not encrypted");

        d = domain(k, 1);
        assert_int_equal(d.summary.data, VM_NOT_MOUNTED);

        k[0].state = VM_DISK_ENCRYPTED;
        k[0].xml_encrypted = true;
        k[1].state = VM_DISK_ENCRYPTING;
        k[1].status.job = ENGINE_OP_ENCRYPT;
        k[1].status.job_done = 1 << 20;
        k[1].status.job_total = 4 << 20;
        snprintf(k[1].target, sizeof k[1].target, "vdb");
        d = domain(k, 2);
        assert_int_equal(d.summary.os, VM_ENCRYPTED);
        assert_int_equal(d.summary.data, VM_ENCRYPTION_IN_PROGRESS);
        assert_non_null(strstr(d.summary.message, "vdb: encrypt 25.0% (1 of 4 MiB)"));

        /* One encrypted and one plain data disk: the group is not encrypted. */
        k[1] = (struct vm_disk){ .state = VM_DISK_ENCRYPTED, .xml_encrypted = true };
        k[2] = (struct vm_disk){ .state = VM_DISK_PLAIN };
        d = domain(k, 3);
        assert_int_equal(d.summary.data, VM_NOT_ENCRYPTED);
        assert_non_null(strstr(d.summary.message, "1 of 2 data volumes"));

        k[2].state = VM_DISK_DECRYPTING;
        k[2].status.job = ENGINE_OP_DECRYPT;
        d = domain(k, 3);
        assert_int_equal(d.summary.data, VM_DECRYPTION_IN_PROGRESS);
        assert_string_equal(vm_volume_status_name(d.summary.data), "DecryptionInProgress");
        assert_string_equal(vm_volume_status_name(VM_NOT_MOUNTED), "NotMounted");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_disks_and_os_disk),
                cmocka_unit_test(test_bad_xml),
                cmocka_unit_test(test_set_and_remove_encryption),
                cmocka_unit_test(test_legacy_encryption_position),
                cmocka_unit_test(test_summary),
                cmocka_unit_test(test_metadata),
                cmocka_unit_test(test_disk_new),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
