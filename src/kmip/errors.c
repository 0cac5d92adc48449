/* errno <-> KMIP Result Reason: the table in errors.h, in code. */
#include <errno.h>

#include "kmip/errors.h"
#include "kmip/tags.h"
#include "shared/macro.h"

uint32_t kmip_reason_from_errno(int err, struct kmip_version v) {
        bool v2 = kmip_version_is_2x(v);
        switch (err < 0 ? -err : err) {
        case ENOENT: return KMIP_REASON_ITEM_NOT_FOUND;
        case EIDRM: return v2 ? KMIP_REASON_OBJECT_DESTROYED : KMIP_REASON_ITEM_NOT_FOUND;
        case ENOKEY:
        case EKEYREVOKED:
                return v2 ? KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE : KMIP_REASON_PERMISSION_DENIED;
        case EACCES: return KMIP_REASON_PERMISSION_DENIED;
        case EXDEV:
                /* Not Extractable exists since 1.4; older peers know only this. */
                return kmip_version_cmp(v, (struct kmip_version) { 1, 4 }) >= 0 ? KMIP_REASON_NOT_EXTRACTABLE
                                                                                : KMIP_REASON_PERMISSION_DENIED;
        case EKEYREJECTED:
        case EKEYEXPIRED:
                return KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL;
        case EPERM: return KMIP_REASON_ILLEGAL_OPERATION;
        case EPROTO: return KMIP_REASON_INVALID_MESSAGE;
        case EINVAL: return KMIP_REASON_INVALID_FIELD;
        case ENODATA: return KMIP_REASON_MISSING_DATA;
        case ENOSYS: return KMIP_REASON_OPERATION_NOT_SUPPORTED;
        case EOPNOTSUPP: return KMIP_REASON_FEATURE_NOT_SUPPORTED;
        case EBADMSG: return KMIP_REASON_CRYPTOGRAPHIC_FAILURE;
        case EMSGSIZE: return KMIP_REASON_RESPONSE_TOO_LARGE;
        case EEXIST: return KMIP_REASON_OBJECT_ALREADY_EXISTS;
        case ERANGE: return KMIP_REASON_INDEX_OUT_OF_BOUNDS;
        case ECANCELED: return KMIP_REASON_OPERATION_CANCELED_BY_REQUESTER;
        case EPROTONOSUPPORT:
                return v2 ? KMIP_REASON_UNSUPPORTED_PROTOCOL_VERSION : KMIP_REASON_INVALID_MESSAGE;
        default: return KMIP_REASON_GENERAL_FAILURE;
        }
}

int kmip_reason_to_errno(uint32_t reason) {
        switch (reason) {
        case KMIP_REASON_ITEM_NOT_FOUND:
        case KMIP_REASON_OBJECT_NOT_FOUND:
                return -ENOENT;
        case KMIP_REASON_OBJECT_DESTROYED: return -EIDRM;
        case KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE: return -ENOKEY;
        case KMIP_REASON_PERMISSION_DENIED:
        case KMIP_REASON_NOT_AUTHORISED:
        case KMIP_REASON_SENSITIVE:
                return -EACCES;
        case KMIP_REASON_NOT_EXTRACTABLE: return -EXDEV;
        case KMIP_REASON_ATTESTATION_REQUIRED:
        case KMIP_REASON_ATTESTATION_FAILED:
                return -EACCES;
        case KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL:
        case KMIP_REASON_BAD_PASSWORD:
        case KMIP_REASON_INVALID_TICKET:
                return -EKEYREJECTED;
        case KMIP_REASON_ILLEGAL_OPERATION: return -EPERM;
        case KMIP_REASON_INVALID_MESSAGE:
        case KMIP_REASON_CODEC_ERROR:
        case KMIP_REASON_UNKNOWN_TAG:
        case KMIP_REASON_UNKNOWN_MESSAGE_EXTENSION:
        case KMIP_REASON_INVALID_DATA_TYPE:
                return -EPROTO;
        case KMIP_REASON_INVALID_FIELD:
        case KMIP_REASON_ENCODING_OPTION_ERROR:
        case KMIP_REASON_INVALID_ATTRIBUTE:
        case KMIP_REASON_INVALID_ATTRIBUTE_VALUE:
        case KMIP_REASON_UNKNOWN_ENUMERATION:
        case KMIP_REASON_NUMERIC_RANGE:
        case KMIP_REASON_BAD_CRYPTOGRAPHIC_PARAMETERS:
        case KMIP_REASON_INVALID_OBJECT_TYPE:
        case KMIP_REASON_ILLEGAL_OBJECT_TYPE:
        case KMIP_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK:
        case KMIP_REASON_MISSING_INITIALIZATION_VECTOR:
        case KMIP_REASON_READ_ONLY_ATTRIBUTE:
        case KMIP_REASON_ATTRIBUTE_READ_ONLY:
        case KMIP_REASON_ATTRIBUTE_SINGLE_VALUED:
        case KMIP_REASON_MULTI_VALUED_ATTRIBUTE:
                return -EINVAL;
        case KMIP_REASON_MISSING_DATA:
        case KMIP_REASON_KEY_VALUE_NOT_PRESENT:
        case KMIP_REASON_ATTRIBUTE_NOT_FOUND:
        case KMIP_REASON_ATTRIBUTE_INSTANCE_NOT_FOUND:
                return -ENODATA;
        case KMIP_REASON_OPERATION_NOT_SUPPORTED: return -ENOSYS;
        case KMIP_REASON_FEATURE_NOT_SUPPORTED:
        case KMIP_REASON_APPLICATION_NAMESPACE_NOT_SUPPORTED:
        case KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED:
        case KMIP_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED:
        case KMIP_REASON_KEY_WRAP_TYPE_NOT_SUPPORTED:
        case KMIP_REASON_UNSUPPORTED_ATTRIBUTE:
        case KMIP_REASON_UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS:
                return -EOPNOTSUPP;
        case KMIP_REASON_CRYPTOGRAPHIC_FAILURE: return -EBADMSG;
        case KMIP_REASON_RESPONSE_TOO_LARGE: return -EMSGSIZE;
        case KMIP_REASON_OBJECT_ALREADY_EXISTS:
        case KMIP_REASON_NON_UNIQUE_NAME_ATTRIBUTE:
                return -EEXIST;
        case KMIP_REASON_INDEX_OUT_OF_BOUNDS: return -ERANGE;
        case KMIP_REASON_OPERATION_CANCELED_BY_REQUESTER: return -ECANCELED;
        case KMIP_REASON_UNSUPPORTED_PROTOCOL_VERSION: return -EPROTONOSUPPORT;
        case KMIP_REASON_SERVER_LIMIT_EXCEEDED:
        case KMIP_REASON_USAGE_LIMIT_EXCEEDED:
                return -EUSERS;
        default: return -EIO;
        }
}

static const struct {
        uint32_t reason;
        const char *name;
} reason_names[] = {
        { KMIP_REASON_ITEM_NOT_FOUND, "Item Not Found" },
        { KMIP_REASON_RESPONSE_TOO_LARGE, "Response Too Large" },
        { KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL, "Authentication Not Successful" },
        { KMIP_REASON_INVALID_MESSAGE, "Invalid Message" },
        { KMIP_REASON_OPERATION_NOT_SUPPORTED, "Operation Not Supported" },
        { KMIP_REASON_MISSING_DATA, "Missing Data" },
        { KMIP_REASON_INVALID_FIELD, "Invalid Field" },
        { KMIP_REASON_FEATURE_NOT_SUPPORTED, "Feature Not Supported" },
        { KMIP_REASON_OPERATION_CANCELED_BY_REQUESTER, "Operation Canceled By Requester" },
        { KMIP_REASON_CRYPTOGRAPHIC_FAILURE, "Cryptographic Failure" },
        { KMIP_REASON_ILLEGAL_OPERATION, "Illegal Operation" },
        { KMIP_REASON_PERMISSION_DENIED, "Permission Denied" },
        { KMIP_REASON_OBJECT_ARCHIVED, "Object Archived" },
        { KMIP_REASON_INDEX_OUT_OF_BOUNDS, "Index Out of Bounds" },
        { KMIP_REASON_APPLICATION_NAMESPACE_NOT_SUPPORTED, "Application Namespace Not Supported" },
        { KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED, "Key Format Type Not Supported" },
        { KMIP_REASON_KEY_COMPRESSION_TYPE_NOT_SUPPORTED, "Key Compression Type Not Supported" },
        { KMIP_REASON_ENCODING_OPTION_ERROR, "Encoding Option Error" },
        { KMIP_REASON_KEY_VALUE_NOT_PRESENT, "Key Value Not Present" },
        { KMIP_REASON_ATTESTATION_REQUIRED, "Attestation Required" },
        { KMIP_REASON_ATTESTATION_FAILED, "Attestation Failed" },
        { KMIP_REASON_SENSITIVE, "Sensitive" },
        { KMIP_REASON_NOT_EXTRACTABLE, "Not Extractable" },
        { KMIP_REASON_OBJECT_ALREADY_EXISTS, "Object Already Exists" },
        { KMIP_REASON_INVALID_TICKET, "Invalid Ticket" },
        { KMIP_REASON_USAGE_LIMIT_EXCEEDED, "Usage Limit Exceeded" },
        { KMIP_REASON_NUMERIC_RANGE, "Numeric Range" },
        { KMIP_REASON_INVALID_DATA_TYPE, "Invalid Data Type" },
        { KMIP_REASON_READ_ONLY_ATTRIBUTE, "Read Only Attribute" },
        { KMIP_REASON_MULTI_VALUED_ATTRIBUTE, "Multi Valued Attribute" },
        { KMIP_REASON_UNSUPPORTED_ATTRIBUTE, "Unsupported Attribute" },
        { KMIP_REASON_ATTRIBUTE_INSTANCE_NOT_FOUND, "Attribute Instance Not Found" },
        { KMIP_REASON_ATTRIBUTE_NOT_FOUND, "Attribute Not Found" },
        { KMIP_REASON_ATTRIBUTE_READ_ONLY, "Attribute Read Only" },
        { KMIP_REASON_ATTRIBUTE_SINGLE_VALUED, "Attribute Single Valued" },
        { KMIP_REASON_BAD_CRYPTOGRAPHIC_PARAMETERS, "Bad Cryptographic Parameters" },
        { KMIP_REASON_BAD_PASSWORD, "Bad Password" },
        { KMIP_REASON_CODEC_ERROR, "Codec Error" },
        { KMIP_REASON_ILLEGAL_OBJECT_TYPE, "Illegal Object Type" },
        { KMIP_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, "Incompatible Cryptographic Usage Mask" },
        { KMIP_REASON_INTERNAL_SERVER_ERROR, "Internal Server Error" },
        { KMIP_REASON_INVALID_ASYNCHRONOUS_CORRELATION_VALUE, "Invalid Asynchronous Correlation Value" },
        { KMIP_REASON_INVALID_ATTRIBUTE, "Invalid Attribute" },
        { KMIP_REASON_INVALID_ATTRIBUTE_VALUE, "Invalid Attribute Value" },
        { KMIP_REASON_INVALID_CORRELATION_VALUE, "Invalid Correlation Value" },
        { KMIP_REASON_INVALID_CSR, "Invalid CSR" },
        { KMIP_REASON_INVALID_OBJECT_TYPE, "Invalid Object Type" },
        { KMIP_REASON_KEY_WRAP_TYPE_NOT_SUPPORTED, "Key Wrap Type Not Supported" },
        { KMIP_REASON_MISSING_INITIALIZATION_VECTOR, "Missing Initialization Vector" },
        { KMIP_REASON_NON_UNIQUE_NAME_ATTRIBUTE, "Non Unique Name Attribute" },
        { KMIP_REASON_OBJECT_DESTROYED, "Object Destroyed" },
        { KMIP_REASON_OBJECT_NOT_FOUND, "Object Not Found" },
        { KMIP_REASON_NOT_AUTHORISED, "Not Authorised" },
        { KMIP_REASON_SERVER_LIMIT_EXCEEDED, "Server Limit Exceeded" },
        { KMIP_REASON_UNKNOWN_ENUMERATION, "Unknown Enumeration" },
        { KMIP_REASON_UNKNOWN_MESSAGE_EXTENSION, "Unknown Message Extension" },
        { KMIP_REASON_UNKNOWN_TAG, "Unknown Tag" },
        { KMIP_REASON_UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, "Unsupported Cryptographic Parameters" },
        { KMIP_REASON_UNSUPPORTED_PROTOCOL_VERSION, "Unsupported Protocol Version" },
        { KMIP_REASON_WRAPPING_OBJECT_ARCHIVED, "Wrapping Object Archived" },
        { KMIP_REASON_WRAPPING_OBJECT_DESTROYED, "Wrapping Object Destroyed" },
        { KMIP_REASON_WRAPPING_OBJECT_NOT_FOUND, "Wrapping Object Not Found" },
        { KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE, "Wrong Key Lifecycle State" },
        { KMIP_REASON_PROTECTION_STORAGE_UNAVAILABLE, "Protection Storage Unavailable" },
        { KMIP_REASON_PKCS11_CODEC_ERROR, "PKCS#11 Codec Error" },
        { KMIP_REASON_PKCS11_INVALID_FUNCTION, "PKCS#11 Invalid Function" },
        { KMIP_REASON_PKCS11_INVALID_INTERFACE, "PKCS#11 Invalid Interface" },
        { KMIP_REASON_GENERAL_FAILURE, "General Failure" },
};

const char *kmip_reason_name(uint32_t reason) {
        for (size_t i = 0; i < ELEMENTSOF(reason_names); i++)
                if (reason_names[i].reason == reason)
                        return reason_names[i].name;
        return "Unknown Reason";
}

const char *kmip_status_name(uint32_t status) {
        switch (status) {
        case KMIP_STATUS_SUCCESS: return "Success";
        case KMIP_STATUS_OPERATION_FAILED: return "Operation Failed";
        case KMIP_STATUS_OPERATION_PENDING: return "Operation Pending";
        case KMIP_STATUS_OPERATION_UNDONE: return "Operation Undone";
        default: return "Unknown Status";
        }
}
