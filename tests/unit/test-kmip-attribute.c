/* Attributes: one model, two wire forms. A 1.x Attribute and its 2.0 counterpart
 * (own tag, or Vendor Attribute for x- names) convert into each other losslessly;
 * wrong value types are refused; names and references convert too. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kmip/attribute.h"
#include "kmip/tags.h"

static struct ttlv_arena *A;
static const struct kmip_version V11 = { 1, 1 }, V14 = { 1, 4 }, V20 = { 2, 0 };

static int setup(void **state) {
        (void) state;
        A = ttlv_arena_new();
        return A ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        ttlv_arena_free(A);
        return 0;
}

static void test_custom_text_both_ways(void **state) {
        (void) state;
        struct kmip_attr_list list = {};
        assert_int_equal(kmip_attr_list_add_text(A, &list, "x-Vendor", "VMware, Inc."), 0);

        /* 1.x: Attribute{Attribute Name "x-Vendor", Attribute Value "VMware, Inc."}. */
        struct ttlv *ta = kmip_attrs_build_container(A, NULL, &list, V11);
        assert_non_null(ta);
        assert_int_equal(ta->tag, KMIP_TAG_TEMPLATE_ATTRIBUTE);
        struct ttlv *at = ttlv_find(ta, KMIP_TAG_ATTRIBUTE);
        const char *s;
        assert_int_equal(ttlv_get_text(at, KMIP_TAG_ATTRIBUTE_NAME, &s, NULL), 0);
        assert_string_equal(s, "x-Vendor");
        assert_int_equal(ttlv_get_text(at, KMIP_TAG_ATTRIBUTE_VALUE, &s, NULL), 0);
        assert_string_equal(s, "VMware, Inc.");

        /* 2.0: Attributes{Attribute{Vendor Identification "x", Attribute Name "Vendor", value}}. */
        struct ttlv *as = kmip_attrs_build_container(A, NULL, &list, V20);
        assert_int_equal(as->tag, KMIP_TAG_ATTRIBUTES);
        struct ttlv *va = ttlv_find(as, KMIP_TAG_VENDOR_ATTRIBUTE);
        assert_non_null(va);
        assert_int_equal(ttlv_get_text(va, KMIP_TAG_VENDOR_IDENTIFICATION, &s, NULL), 0);
        assert_string_equal(s, "x");
        assert_int_equal(ttlv_get_text(va, KMIP_TAG_ATTRIBUTE_NAME, &s, NULL), 0);
        assert_string_equal(s, "Vendor");

        /* Both parse back to the same attribute. */
        struct kmip_attr_list l1 = {}, l2 = {};
        assert_int_equal(kmip_attrs_parse(A, ta, &l1), 0);
        assert_int_equal(kmip_attrs_parse(A, as, &l2), 0);
        assert_int_equal(l1.n, 1);
        assert_int_equal(l2.n, 1);
        assert_string_equal(l1.items[0].name, "x-Vendor");
        assert_string_equal(l2.items[0].name, "x-Vendor");
        l2.items[0].value->tag = l1.items[0].value->tag;
        assert_true(ttlv_equal(l1.items[0].value, l2.items[0].value));
}

static void test_custom_any_type(void **state) {
        (void) state;
        struct kmip_attr_list list = {};
        assert_int_equal(kmip_attr_list_add_integer(A, &list, "x-NETAPP-Count", 17), 0);
        assert_int_equal(kmip_attr_list_add_date_time(A, &list, "y-Seen", 1700000000), 0);
        for (int k = 0; k < 2; k++) {
                struct kmip_version v = k ? V20 : V14;
                struct ttlv *c = kmip_attrs_build_container(A, NULL, &list, v);
                struct kmip_attr_list back = {};
                assert_int_equal(kmip_attrs_parse(A, c, &back), 0);
                assert_int_equal(back.n, 2);
                struct kmip_attr *x = kmip_attr_list_find(&back, "x-NETAPP-Count", -1);
                assert_non_null(x);
                assert_int_equal(x->value->type, TTLV_INTEGER);
                assert_int_equal(x->value->v.integer, 17);
                struct kmip_attr *y = kmip_attr_list_find(&back, "y-Seen", -1);
                assert_non_null(y);
                assert_int_equal(y->value->type, TTLV_DATE_TIME);
        }
}

static void test_standard_attributes(void **state) {
        (void) state;
        struct kmip_attr_list list = {};
        assert_int_equal(kmip_attr_list_add_enum(A, &list, KMIP_ATTR_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES), 0);
        assert_int_equal(kmip_attr_list_add_integer(A, &list, KMIP_ATTR_CRYPTOGRAPHIC_LENGTH, 256), 0);
        assert_int_equal(kmip_attr_list_add_name(A, &list, "vm-disk-1"), 0);

        struct ttlv *as = kmip_attrs_build_container(A, NULL, &list, V20);
        uint32_t e;
        int32_t i;
        assert_int_equal(ttlv_get_enum(as, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &e), 0);
        assert_int_equal(e, KMIP_ALG_AES);
        assert_int_equal(ttlv_get_integer(as, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &i), 0);
        assert_int_equal(i, 256);
        struct ttlv *name = ttlv_find(as, KMIP_TAG_NAME);
        const char *s;
        assert_int_equal(ttlv_get_text(name, KMIP_TAG_NAME_VALUE, &s, NULL), 0);
        assert_string_equal(s, "vm-disk-1");

        struct kmip_attr_list back = {};
        assert_int_equal(kmip_attrs_parse(A, as, &back), 0);
        assert_int_equal(back.n, 3);
        assert_non_null(kmip_attr_list_find(&back, KMIP_ATTR_NAME, -1));

        /* 1.x Template-Attribute: a Name child there names a template, not the object. */
        struct ttlv *ta = kmip_attrs_build_container(A, NULL, &list, V14);
        struct ttlv *tmpl = ttlv_add_structure(A, ta, KMIP_TAG_NAME);
        ttlv_add_text(A, tmpl, KMIP_TAG_NAME_VALUE, "template");
        struct kmip_attr_list b2 = {};
        assert_int_equal(kmip_attrs_parse(A, ta, &b2), 0);
        assert_int_equal(b2.n, 3);
}

static void test_wrong_type_refused(void **state) {
        (void) state;
        struct ttlv *at = ttlv_add_structure(A, NULL, KMIP_TAG_ATTRIBUTE);
        ttlv_add_text(A, at, KMIP_TAG_ATTRIBUTE_NAME, "Cryptographic Length");
        ttlv_add_text(A, at, KMIP_TAG_ATTRIBUTE_VALUE, "256");
        struct kmip_attr attr;
        assert_int_equal(kmip_attr_parse(A, at, &attr), -EPROTO);

        /* 2.0 element with a wrong type, and a tag that is no attribute. */
        struct ttlv *as = ttlv_add_structure(A, NULL, KMIP_TAG_ATTRIBUTES);
        ttlv_add_integer(A, as, KMIP_TAG_STATE, 2);
        struct kmip_attr_list l = {};
        assert_int_equal(kmip_attrs_parse(A, as, &l), -EPROTO);
        as = ttlv_add_structure(A, NULL, KMIP_TAG_ATTRIBUTES);
        ttlv_add_integer(A, as, KMIP_TAG_BATCH_COUNT, 2);
        assert_int_equal(kmip_attrs_parse(A, as, &l), -EPROTO);

        /* 1.x attribute without a value. */
        at = ttlv_add_structure(A, NULL, KMIP_TAG_ATTRIBUTE);
        ttlv_add_text(A, at, KMIP_TAG_ATTRIBUTE_NAME, "x-Foo");
        assert_int_equal(kmip_attr_parse(A, at, &attr), -EPROTO);
}

static void test_index(void **state) {
        (void) state;
        struct ttlv *value = ttlv_add_text(A, NULL, KMIP_TAG_ATTRIBUTE_VALUE, "g2");
        struct kmip_attr_list list = {};
        assert_int_equal(kmip_attr_list_add(A, &list, KMIP_ATTR_OBJECT_GROUP, 1, value), 0);
        struct ttlv *p = ttlv_add_structure(A, NULL, KMIP_TAG_RESPONSE_PAYLOAD);
        assert_int_equal(kmip_attrs_build(A, p, &list, V14), 0);
        int32_t idx;
        assert_int_equal(ttlv_get_integer(ttlv_find(p, KMIP_TAG_ATTRIBUTE), KMIP_TAG_ATTRIBUTE_INDEX, &idx), 0);
        assert_int_equal(idx, 1);
        struct kmip_attr_list back = {};
        assert_int_equal(kmip_attrs_parse(A, p, &back), 0);
        assert_non_null(kmip_attr_list_find(&back, KMIP_ATTR_OBJECT_GROUP, 1));
        assert_null(kmip_attr_list_find(&back, KMIP_ATTR_OBJECT_GROUP, 0));
}

static void test_versions_filter(void **state) {
        (void) state;
        assert_false(kmip_attr_in_version(KMIP_ATTR_FRESH, KMIP_VERSION(1, 0)));
        assert_true(kmip_attr_in_version(KMIP_ATTR_FRESH, V11));
        assert_false(kmip_attr_in_version(KMIP_ATTR_OPERATION_POLICY_NAME, V20));
        assert_true(kmip_attr_in_version(KMIP_ATTR_OPERATION_POLICY_NAME, V14));
        assert_false(kmip_attr_in_version(KMIP_ATTR_DESCRIPTION, V11));
        assert_true(kmip_attr_in_version("x-anything", KMIP_VERSION(1, 0)));

        struct kmip_attr_list list = {};
        struct ttlv *t = ttlv_add_bool(A, NULL, KMIP_TAG_ATTRIBUTE_VALUE, true);
        assert_int_equal(kmip_attr_list_add(A, &list, KMIP_ATTR_FRESH, 0, t), 0);
        struct ttlv *p = ttlv_add_structure(A, NULL, KMIP_TAG_RESPONSE_PAYLOAD);
        assert_int_equal(kmip_attrs_build(A, p, &list, KMIP_VERSION(1, 0)), 0);
        assert_int_equal(ttlv_count(p, 0), 0); /* never sent to a 1.0 peer */
        assert_true(kmip_attr_name_is_custom("x-Vendor"));
        assert_false(kmip_attr_name_is_custom("Name"));
}

static void test_names(void **state) {
        (void) state;
        for (int k = 0; k < 2; k++) {
                struct kmip_version v = k ? V20 : V11;
                struct ttlv *p = ttlv_add_structure(A, NULL, KMIP_TAG_REQUEST_PAYLOAD);
                ttlv_add_text(A, p, KMIP_TAG_UNIQUE_IDENTIFIER, "1");
                assert_non_null(kmip_attr_name_build(A, p, KMIP_ATTR_STATE, v));
                assert_non_null(kmip_attr_name_build(A, p, "x-Product_Version", v));
                if (k)
                        assert_int_equal(ttlv_count(p, KMIP_TAG_ATTRIBUTE_REFERENCE), 2);
                else
                        assert_int_equal(ttlv_count(p, KMIP_TAG_ATTRIBUTE_NAME), 2);
                const char *names[4];
                size_t n;
                assert_int_equal(kmip_attr_names_parse(A, p, names, 4, &n), 0);
                assert_int_equal(n, 2);
                assert_string_equal(names[0], "State");
                assert_string_equal(names[1], "x-Product_Version");
                assert_int_equal(kmip_attr_names_parse(A, p, names, 1, &n), -E2BIG);
        }
}

static void test_value_storage(void **state) {
        (void) state;
        struct ttlv *v = ttlv_add_structure(A, NULL, KMIP_TAG_ATTRIBUTE_VALUE);
        ttlv_add_text(A, v, KMIP_TAG_NAME_VALUE, "k1");
        ttlv_add_enum(A, v, KMIP_TAG_NAME_TYPE, 1);
        uint8_t *buf;
        size_t n;
        assert_int_equal(kmip_attr_value_encode(v, &buf, &n), 0);
        struct ttlv *back;
        assert_int_equal(kmip_attr_value_decode(A, buf, n, &back), 0);
        assert_true(ttlv_equal(v, back));
        ttlv_buffer_free(buf, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_custom_text_both_ways),
                cmocka_unit_test(test_custom_any_type),
                cmocka_unit_test(test_standard_attributes),
                cmocka_unit_test(test_wrong_type_refused),
                cmocka_unit_test(test_index),
                cmocka_unit_test(test_versions_filter),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_value_storage),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
