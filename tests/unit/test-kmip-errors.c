/* The errno <-> Result Reason mapping: every errno the library documents survives a
 * round trip, 2.0-only reasons fall back to 1.x ones for 1.x peers, and names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kmip/errors.h"
#include "kmip/tags.h"

static void test_round_trip(void **state) {
        (void) state;
        static const int errs[] = { ENOENT, EACCES, EKEYREJECTED, EPERM, EPROTO, EINVAL, ENODATA, ENOSYS,
                                    EOPNOTSUPP, EBADMSG, EMSGSIZE, EEXIST, ERANGE, ECANCELED, EXDEV };
        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
                uint32_t reason = kmip_reason_from_errno(-errs[i], KMIP_VERSION(1, 4));
                assert_int_not_equal(reason, KMIP_REASON_GENERAL_FAILURE);
                assert_int_equal(kmip_reason_to_errno(reason), -errs[i]);
        }
        /* 2.0-only reasons, and their 1.x fallbacks. */
        assert_int_equal(kmip_reason_from_errno(-EIDRM, KMIP_VERSION(2, 0)), KMIP_REASON_OBJECT_DESTROYED);
        assert_int_equal(kmip_reason_to_errno(KMIP_REASON_OBJECT_DESTROYED), -EIDRM);
        assert_int_equal(kmip_reason_from_errno(-EIDRM, KMIP_VERSION(1, 1)), KMIP_REASON_ITEM_NOT_FOUND);
        assert_int_equal(kmip_reason_from_errno(-ENOKEY, KMIP_VERSION(2, 0)),
                         KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE);
        assert_int_equal(kmip_reason_to_errno(KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE), -ENOKEY);
        assert_int_equal(kmip_reason_from_errno(-EKEYREVOKED, KMIP_VERSION(1, 1)), KMIP_REASON_PERMISSION_DENIED);
        /* Not Extractable is a 1.4 reason. */
        assert_int_equal(kmip_reason_from_errno(-EXDEV, KMIP_VERSION(1, 4)), KMIP_REASON_NOT_EXTRACTABLE);
        assert_int_equal(kmip_reason_from_errno(-EXDEV, KMIP_VERSION(1, 3)), KMIP_REASON_PERMISSION_DENIED);
        assert_int_equal(kmip_reason_to_errno(KMIP_REASON_SENSITIVE), -EACCES);
        assert_int_equal(kmip_reason_from_errno(-EPROTONOSUPPORT, KMIP_VERSION(1, 4)),
                         KMIP_REASON_INVALID_MESSAGE);
        assert_int_equal(kmip_reason_from_errno(-EIO, KMIP_VERSION(1, 4)), KMIP_REASON_GENERAL_FAILURE);
        assert_int_equal(kmip_reason_to_errno(KMIP_REASON_GENERAL_FAILURE), -EIO);
        assert_int_equal(kmip_reason_to_errno(0x7777), -EIO);
}

static void test_names(void **state) {
        (void) state;
        assert_string_equal(kmip_reason_name(KMIP_REASON_ITEM_NOT_FOUND), "Item Not Found");
        assert_string_equal(kmip_reason_name(KMIP_REASON_GENERAL_FAILURE), "General Failure");
        assert_string_equal(kmip_reason_name(0x7777), "Unknown Reason");
        assert_string_equal(kmip_status_name(KMIP_STATUS_OPERATION_FAILED), "Operation Failed");
        assert_string_equal(kmip_operation_name(KMIP_OP_DISCOVER_VERSIONS), "Discover Versions");
        assert_string_equal(kmip_tag_name(KMIP_TAG_REQUEST_MESSAGE), "Request Message");
        assert_string_equal(kmip_tag_name(0x42FFFF), "Unknown");
        uint32_t v;
        assert_int_equal(kmip_state_from_name("pre-active", &v), 0);
        assert_int_equal(v, KMIP_STATE_PRE_ACTIVE);
        assert_int_equal(kmip_revocation_reason_from_name("key_compromise", &v), 0);
        assert_int_equal(v, KMIP_REVOKE_KEY_COMPROMISE);
        assert_int_equal(kmip_object_type_from_name("Symmetric Key", &v), 0);
        assert_int_equal(v, KMIP_OBJECT_SYMMETRIC_KEY);
        assert_int_equal(kmip_block_cipher_mode_from_name("aes-key-wrap-padding", &v), 0);
        assert_int_equal(v, KMIP_MODE_AES_KEY_WRAP_PADDING);
        assert_int_equal(kmip_state_from_name("bogus", &v), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
