/* Names of KMIP numbers, for logs, debug dumps and the command line. */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kmip/tags.h"
#include "shared/macro.h"

struct name {
        uint32_t value;
        const char *name;
};

/* Sorted by value, for bsearch. */
static const struct name tag_names[] = {
        { KMIP_TAG_ACTIVATION_DATE, "Activation Date" },
        { KMIP_TAG_APPLICATION_DATA, "Application Data" },
        { KMIP_TAG_APPLICATION_NAMESPACE, "Application Namespace" },
        { KMIP_TAG_APPLICATION_SPECIFIC_INFORMATION, "Application Specific Information" },
        { KMIP_TAG_ARCHIVE_DATE, "Archive Date" },
        { KMIP_TAG_ASYNCHRONOUS_CORRELATION_VALUE, "Asynchronous Correlation Value" },
        { KMIP_TAG_ASYNCHRONOUS_INDICATOR, "Asynchronous Indicator" },
        { KMIP_TAG_ATTRIBUTE, "Attribute" },
        { KMIP_TAG_ATTRIBUTE_INDEX, "Attribute Index" },
        { KMIP_TAG_ATTRIBUTE_NAME, "Attribute Name" },
        { KMIP_TAG_ATTRIBUTE_VALUE, "Attribute Value" },
        { KMIP_TAG_AUTHENTICATION, "Authentication" },
        { KMIP_TAG_BATCH_COUNT, "Batch Count" },
        { KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION, "Batch Error Continuation Option" },
        { KMIP_TAG_BATCH_ITEM, "Batch Item" },
        { KMIP_TAG_BATCH_ORDER_OPTION, "Batch Order Option" },
        { KMIP_TAG_BLOCK_CIPHER_MODE, "Block Cipher Mode" },
        { KMIP_TAG_CANCELLATION_RESULT, "Cancellation Result" },
        { KMIP_TAG_CERTIFICATE, "Certificate" },
        { KMIP_TAG_CERTIFICATE_IDENTIFIER, "Certificate Identifier" },
        { KMIP_TAG_CERTIFICATE_ISSUER, "Certificate Issuer" },
        { KMIP_TAG_CERTIFICATE_ISSUER_ALTERNATIVE_NAME, "Certificate Issuer Alternative Name" },
        { KMIP_TAG_CERTIFICATE_ISSUER_DISTINGUISHED_NAME, "Certificate Issuer Distinguished Name" },
        { KMIP_TAG_CERTIFICATE_REQUEST, "Certificate Request" },
        { KMIP_TAG_CERTIFICATE_REQUEST_TYPE, "Certificate Request Type" },
        { KMIP_TAG_CERTIFICATE_SUBJECT, "Certificate Subject" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_ALTERNATIVE_NAME, "Certificate Subject Alternative Name" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_DISTINGUISHED_NAME, "Certificate Subject Distinguished Name" },
        { KMIP_TAG_CERTIFICATE_TYPE, "Certificate Type" },
        { KMIP_TAG_CERTIFICATE_VALUE, "Certificate Value" },
        { KMIP_TAG_COMMON_TEMPLATE_ATTRIBUTE, "Common Template Attribute" },
        { KMIP_TAG_COMPROMISE_DATE, "Compromise Date" },
        { KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, "Compromise Occurrence Date" },
        { KMIP_TAG_CONTACT_INFORMATION, "Contact Information" },
        { KMIP_TAG_CREDENTIAL, "Credential" },
        { KMIP_TAG_CREDENTIAL_TYPE, "Credential Type" },
        { KMIP_TAG_CREDENTIAL_VALUE, "Credential Value" },
        { KMIP_TAG_CRITICALITY_INDICATOR, "Criticality Indicator" },
        { KMIP_TAG_CRT_COEFFICIENT, "CRT Coefficient" },
        { KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, "Cryptographic Algorithm" },
        { KMIP_TAG_CRYPTOGRAPHIC_DOMAIN_PARAMETERS, "Cryptographic Domain Parameters" },
        { KMIP_TAG_CRYPTOGRAPHIC_LENGTH, "Cryptographic Length" },
        { KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS, "Cryptographic Parameters" },
        { KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, "Cryptographic Usage Mask" },
        { KMIP_TAG_CUSTOM_ATTRIBUTE, "Custom Attribute" },
        { KMIP_TAG_D, "D" },
        { KMIP_TAG_DEACTIVATION_DATE, "Deactivation Date" },
        { KMIP_TAG_DERIVATION_DATA, "Derivation Data" },
        { KMIP_TAG_DERIVATION_METHOD, "Derivation Method" },
        { KMIP_TAG_DERIVATION_PARAMETERS, "Derivation Parameters" },
        { KMIP_TAG_DESTROY_DATE, "Destroy Date" },
        { KMIP_TAG_DIGEST, "Digest" },
        { KMIP_TAG_DIGEST_VALUE, "Digest Value" },
        { KMIP_TAG_ENCRYPTION_KEY_INFORMATION, "Encryption Key Information" },
        { KMIP_TAG_G, "G" },
        { KMIP_TAG_HASHING_ALGORITHM, "Hashing Algorithm" },
        { KMIP_TAG_INITIAL_DATE, "Initial Date" },
        { KMIP_TAG_INITIALIZATION_VECTOR, "Initialization Vector" },
        { KMIP_TAG_ISSUER, "Issuer" },
        { KMIP_TAG_ITERATION_COUNT, "Iteration Count" },
        { KMIP_TAG_IV_COUNTER_NONCE, "IV Counter Nonce" },
        { KMIP_TAG_J, "J" },
        { KMIP_TAG_KEY, "Key" },
        { KMIP_TAG_KEY_BLOCK, "Key Block" },
        { KMIP_TAG_KEY_COMPRESSION_TYPE, "Key Compression Type" },
        { KMIP_TAG_KEY_FORMAT_TYPE, "Key Format Type" },
        { KMIP_TAG_KEY_MATERIAL, "Key Material" },
        { KMIP_TAG_KEY_PART_IDENTIFIER, "Key Part Identifier" },
        { KMIP_TAG_KEY_VALUE, "Key Value" },
        { KMIP_TAG_KEY_WRAPPING_DATA, "Key Wrapping Data" },
        { KMIP_TAG_KEY_WRAPPING_SPECIFICATION, "Key Wrapping Specification" },
        { KMIP_TAG_LAST_CHANGE_DATE, "Last Change Date" },
        { KMIP_TAG_LEASE_TIME, "Lease Time" },
        { KMIP_TAG_LINK, "Link" },
        { KMIP_TAG_LINK_TYPE, "Link Type" },
        { KMIP_TAG_LINKED_OBJECT_IDENTIFIER, "Linked Object Identifier" },
        { KMIP_TAG_MAC_SIGNATURE, "MAC Signature" },
        { KMIP_TAG_MAC_SIGNATURE_KEY_INFORMATION, "MAC Signature Key Information" },
        { KMIP_TAG_MAXIMUM_ITEMS, "Maximum Items" },
        { KMIP_TAG_MAXIMUM_RESPONSE_SIZE, "Maximum Response Size" },
        { KMIP_TAG_MESSAGE_EXTENSION, "Message Extension" },
        { KMIP_TAG_MODULUS, "Modulus" },
        { KMIP_TAG_NAME, "Name" },
        { KMIP_TAG_NAME_TYPE, "Name Type" },
        { KMIP_TAG_NAME_VALUE, "Name Value" },
        { KMIP_TAG_OBJECT_GROUP, "Object Group" },
        { KMIP_TAG_OBJECT_TYPE, "Object Type" },
        { KMIP_TAG_OFFSET, "Offset" },
        { KMIP_TAG_OPAQUE_DATA_TYPE, "Opaque Data Type" },
        { KMIP_TAG_OPAQUE_DATA_VALUE, "Opaque Data Value" },
        { KMIP_TAG_OPAQUE_OBJECT, "Opaque Object" },
        { KMIP_TAG_OPERATION, "Operation" },
        { KMIP_TAG_OPERATION_POLICY_NAME, "Operation Policy Name" },
        { KMIP_TAG_P, "P" },
        { KMIP_TAG_PADDING_METHOD, "Padding Method" },
        { KMIP_TAG_PRIME_EXPONENT_P, "Prime Exponent P" },
        { KMIP_TAG_PRIME_EXPONENT_Q, "Prime Exponent Q" },
        { KMIP_TAG_PRIME_FIELD_SIZE, "Prime Field Size" },
        { KMIP_TAG_PRIVATE_EXPONENT, "Private Exponent" },
        { KMIP_TAG_PRIVATE_KEY, "Private Key" },
        { KMIP_TAG_PRIVATE_KEY_TEMPLATE_ATTRIBUTE, "Private Key Template Attribute" },
        { KMIP_TAG_PRIVATE_KEY_UNIQUE_IDENTIFIER, "Private Key Unique Identifier" },
        { KMIP_TAG_PROCESS_START_DATE, "Process Start Date" },
        { KMIP_TAG_PROTECT_STOP_DATE, "Protect Stop Date" },
        { KMIP_TAG_PROTOCOL_VERSION, "Protocol Version" },
        { KMIP_TAG_PROTOCOL_VERSION_MAJOR, "Protocol Version Major" },
        { KMIP_TAG_PROTOCOL_VERSION_MINOR, "Protocol Version Minor" },
        { KMIP_TAG_PUBLIC_EXPONENT, "Public Exponent" },
        { KMIP_TAG_PUBLIC_KEY, "Public Key" },
        { KMIP_TAG_PUBLIC_KEY_TEMPLATE_ATTRIBUTE, "Public Key Template Attribute" },
        { KMIP_TAG_PUBLIC_KEY_UNIQUE_IDENTIFIER, "Public Key Unique Identifier" },
        { KMIP_TAG_PUT_FUNCTION, "Put Function" },
        { KMIP_TAG_Q, "Q" },
        { KMIP_TAG_Q_STRING, "Q String" },
        { KMIP_TAG_QLENGTH, "Qlength" },
        { KMIP_TAG_QUERY_FUNCTION, "Query Function" },
        { KMIP_TAG_RECOMMENDED_CURVE, "Recommended Curve" },
        { KMIP_TAG_REPLACED_UNIQUE_IDENTIFIER, "Replaced Unique Identifier" },
        { KMIP_TAG_REQUEST_HEADER, "Request Header" },
        { KMIP_TAG_REQUEST_MESSAGE, "Request Message" },
        { KMIP_TAG_REQUEST_PAYLOAD, "Request Payload" },
        { KMIP_TAG_RESPONSE_HEADER, "Response Header" },
        { KMIP_TAG_RESPONSE_MESSAGE, "Response Message" },
        { KMIP_TAG_RESPONSE_PAYLOAD, "Response Payload" },
        { KMIP_TAG_RESULT_MESSAGE, "Result Message" },
        { KMIP_TAG_RESULT_REASON, "Result Reason" },
        { KMIP_TAG_RESULT_STATUS, "Result Status" },
        { KMIP_TAG_REVOCATION_MESSAGE, "Revocation Message" },
        { KMIP_TAG_REVOCATION_REASON, "Revocation Reason" },
        { KMIP_TAG_REVOCATION_REASON_CODE, "Revocation Reason Code" },
        { KMIP_TAG_KEY_ROLE_TYPE, "Key Role Type" },
        { KMIP_TAG_SALT, "Salt" },
        { KMIP_TAG_SECRET_DATA, "Secret Data" },
        { KMIP_TAG_SECRET_DATA_TYPE, "Secret Data Type" },
        { KMIP_TAG_SERIAL_NUMBER, "Serial Number" },
        { KMIP_TAG_SERVER_INFORMATION, "Server Information" },
        { KMIP_TAG_SPLIT_KEY, "Split Key" },
        { KMIP_TAG_SPLIT_KEY_METHOD, "Split Key Method" },
        { KMIP_TAG_SPLIT_KEY_PARTS, "Split Key Parts" },
        { KMIP_TAG_SPLIT_KEY_THRESHOLD, "Split Key Threshold" },
        { KMIP_TAG_STATE, "State" },
        { KMIP_TAG_STORAGE_STATUS_MASK, "Storage Status Mask" },
        { KMIP_TAG_SYMMETRIC_KEY, "Symmetric Key" },
        { KMIP_TAG_TEMPLATE, "Template" },
        { KMIP_TAG_TEMPLATE_ATTRIBUTE, "Template Attribute" },
        { KMIP_TAG_TIME_STAMP, "Time Stamp" },
        { KMIP_TAG_UNIQUE_BATCH_ITEM_ID, "Unique Batch Item ID" },
        { KMIP_TAG_UNIQUE_IDENTIFIER, "Unique Identifier" },
        { KMIP_TAG_USAGE_LIMITS, "Usage Limits" },
        { KMIP_TAG_USAGE_LIMITS_COUNT, "Usage Limits Count" },
        { KMIP_TAG_USAGE_LIMITS_TOTAL, "Usage Limits Total" },
        { KMIP_TAG_USAGE_LIMITS_UNIT, "Usage Limits Unit" },
        { KMIP_TAG_USERNAME, "Username" },
        { KMIP_TAG_VALIDITY_DATE, "Validity Date" },
        { KMIP_TAG_VALIDITY_INDICATOR, "Validity Indicator" },
        { KMIP_TAG_VENDOR_EXTENSION, "Vendor Extension" },
        { KMIP_TAG_VENDOR_IDENTIFICATION, "Vendor Identification" },
        { KMIP_TAG_WRAPPING_METHOD, "Wrapping Method" },
        { KMIP_TAG_X, "X" },
        { KMIP_TAG_Y, "Y" },
        { KMIP_TAG_PASSWORD, "Password" },
        { KMIP_TAG_DEVICE_IDENTIFIER, "Device Identifier" },
        { KMIP_TAG_ENCODING_OPTION, "Encoding Option" },
        { KMIP_TAG_EXTENSION_INFORMATION, "Extension Information" },
        { KMIP_TAG_EXTENSION_NAME, "Extension Name" },
        { KMIP_TAG_EXTENSION_TAG, "Extension Tag" },
        { KMIP_TAG_EXTENSION_TYPE, "Extension Type" },
        { KMIP_TAG_FRESH, "Fresh" },
        { KMIP_TAG_MACHINE_IDENTIFIER, "Machine Identifier" },
        { KMIP_TAG_MEDIA_IDENTIFIER, "Media Identifier" },
        { KMIP_TAG_NETWORK_IDENTIFIER, "Network Identifier" },
        { KMIP_TAG_OBJECT_GROUP_MEMBER, "Object Group Member" },
        { KMIP_TAG_CERTIFICATE_LENGTH, "Certificate Length" },
        { KMIP_TAG_DIGITAL_SIGNATURE_ALGORITHM, "Digital Signature Algorithm" },
        { KMIP_TAG_CERTIFICATE_SERIAL_NUMBER, "Certificate Serial Number" },
        { KMIP_TAG_DEVICE_SERIAL_NUMBER, "Device Serial Number" },
        { KMIP_TAG_ISSUER_ALTERNATIVE_NAME, "Issuer Alternative Name" },
        { KMIP_TAG_ISSUER_DISTINGUISHED_NAME, "Issuer Distinguished Name" },
        { KMIP_TAG_SUBJECT_ALTERNATIVE_NAME, "Subject Alternative Name" },
        { KMIP_TAG_SUBJECT_DISTINGUISHED_NAME, "Subject Distinguished Name" },
        { KMIP_TAG_X_509_CERTIFICATE_IDENTIFIER, "X 509 Certificate Identifier" },
        { KMIP_TAG_X_509_CERTIFICATE_ISSUER, "X 509 Certificate Issuer" },
        { KMIP_TAG_X_509_CERTIFICATE_SUBJECT, "X 509 Certificate Subject" },
        { KMIP_TAG_KEY_VALUE_LOCATION, "Key Value Location" },
        { KMIP_TAG_KEY_VALUE_LOCATION_VALUE, "Key Value Location Value" },
        { KMIP_TAG_KEY_VALUE_LOCATION_TYPE, "Key Value Location Type" },
        { KMIP_TAG_KEY_VALUE_PRESENT, "Key Value Present" },
        { KMIP_TAG_ORIGINAL_CREATION_DATE, "Original Creation Date" },
        { KMIP_TAG_PGP_KEY, "PGP Key" },
        { KMIP_TAG_PGP_KEY_VERSION, "PGP Key Version" },
        { KMIP_TAG_ALTERNATIVE_NAME, "Alternative Name" },
        { KMIP_TAG_ALTERNATIVE_NAME_VALUE, "Alternative Name Value" },
        { KMIP_TAG_ALTERNATIVE_NAME_TYPE, "Alternative Name Type" },
        { KMIP_TAG_DATA, "Data" },
        { KMIP_TAG_SIGNATURE_DATA, "Signature Data" },
        { KMIP_TAG_DATA_LENGTH, "Data Length" },
        { KMIP_TAG_RANDOM_IV, "Random IV" },
        { KMIP_TAG_MAC_DATA, "MAC Data" },
        { KMIP_TAG_ATTESTATION_TYPE, "Attestation Type" },
        { KMIP_TAG_NONCE, "Nonce" },
        { KMIP_TAG_NONCE_ID, "Nonce ID" },
        { KMIP_TAG_NONCE_VALUE, "Nonce Value" },
        { KMIP_TAG_ATTESTATION_MEASUREMENT, "Attestation Measurement" },
        { KMIP_TAG_ATTESTATION_ASSERTION, "Attestation Assertion" },
        { KMIP_TAG_IV_LENGTH, "IV Length" },
        { KMIP_TAG_TAG_LENGTH, "Tag Length" },
        { KMIP_TAG_FIXED_FIELD_LENGTH, "Fixed Field Length" },
        { KMIP_TAG_COUNTER_LENGTH, "Counter Length" },
        { KMIP_TAG_INITIAL_COUNTER_VALUE, "Initial Counter Value" },
        { KMIP_TAG_INVOCATION_FIELD_LENGTH, "Invocation Field Length" },
        { KMIP_TAG_ATTESTATION_CAPABLE_INDICATOR, "Attestation Capable Indicator" },
        { KMIP_TAG_OFFSET_ITEMS, "Offset Items" },
        { KMIP_TAG_LOCATED_ITEMS, "Located Items" },
        { KMIP_TAG_CORRELATION_VALUE, "Correlation Value" },
        { KMIP_TAG_INIT_INDICATOR, "Init Indicator" },
        { KMIP_TAG_FINAL_INDICATOR, "Final Indicator" },
        { KMIP_TAG_RNG_PARAMETERS, "RNG Parameters" },
        { KMIP_TAG_RNG_ALGORITHM, "RNG Algorithm" },
        { KMIP_TAG_DRBG_ALGORITHM, "DRBG Algorithm" },
        { KMIP_TAG_FIPS186_VARIATION, "FIPS186 Variation" },
        { KMIP_TAG_PREDICTION_RESISTANCE, "Prediction Resistance" },
        { KMIP_TAG_RANDOM_NUMBER_GENERATOR, "Random Number Generator" },
        { KMIP_TAG_VALIDATION_INFORMATION, "Validation Information" },
        { KMIP_TAG_VALIDATION_AUTHORITY_TYPE, "Validation Authority Type" },
        { KMIP_TAG_VALIDATION_AUTHORITY_COUNTRY, "Validation Authority Country" },
        { KMIP_TAG_VALIDATION_AUTHORITY_URI, "Validation Authority URI" },
        { KMIP_TAG_VALIDATION_VERSION_MAJOR, "Validation Version Major" },
        { KMIP_TAG_VALIDATION_VERSION_MINOR, "Validation Version Minor" },
        { KMIP_TAG_VALIDATION_TYPE, "Validation Type" },
        { KMIP_TAG_VALIDATION_LEVEL, "Validation Level" },
        { KMIP_TAG_VALIDATION_CERTIFICATE_IDENTIFIER, "Validation Certificate Identifier" },
        { KMIP_TAG_VALIDATION_CERTIFICATE_URI, "Validation Certificate URI" },
        { KMIP_TAG_VALIDATION_VENDOR_URI, "Validation Vendor URI" },
        { KMIP_TAG_VALIDATION_PROFILE, "Validation Profile" },
        { KMIP_TAG_PROFILE_INFORMATION, "Profile Information" },
        { KMIP_TAG_PROFILE_NAME, "Profile Name" },
        { KMIP_TAG_SERVER_URI, "Server URI" },
        { KMIP_TAG_SERVER_PORT, "Server Port" },
        { KMIP_TAG_STREAMING_CAPABILITY, "Streaming Capability" },
        { KMIP_TAG_ASYNCHRONOUS_CAPABILITY, "Asynchronous Capability" },
        { KMIP_TAG_ATTESTATION_CAPABILITY, "Attestation Capability" },
        { KMIP_TAG_UNWRAP_MODE, "Unwrap Mode" },
        { KMIP_TAG_DESTROY_ACTION, "Destroy Action" },
        { KMIP_TAG_SHREDDING_ALGORITHM, "Shredding Algorithm" },
        { KMIP_TAG_RNG_MODE, "RNG Mode" },
        { KMIP_TAG_CLIENT_REGISTRATION_METHOD, "Client Registration Method" },
        { KMIP_TAG_CAPABILITY_INFORMATION, "Capability Information" },
        { KMIP_TAG_KEY_WRAP_TYPE, "Key Wrap Type" },
        { KMIP_TAG_BATCH_UNDO_CAPABILITY, "Batch Undo Capability" },
        { KMIP_TAG_BATCH_CONTINUE_CAPABILITY, "Batch Continue Capability" },
        { KMIP_TAG_PKCS12_FRIENDLY_NAME, "Pkcs12 Friendly Name" },
        { KMIP_TAG_DESCRIPTION, "Description" },
        { KMIP_TAG_COMMENT, "Comment" },
        { KMIP_TAG_AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, "Authenticated Encryption Additional Data" },
        { KMIP_TAG_AUTHENTICATED_ENCRYPTION_TAG, "Authenticated Encryption Tag" },
        { KMIP_TAG_SALT_LENGTH, "Salt Length" },
        { KMIP_TAG_MASK_GENERATOR, "Mask Generator" },
        { KMIP_TAG_MASK_GENERATOR_HASHING_ALGORITHM, "Mask Generator Hashing Algorithm" },
        { KMIP_TAG_P_SOURCE, "P Source" },
        { KMIP_TAG_TRAILER_FIELD, "Trailer Field" },
        { KMIP_TAG_CLIENT_CORRELATION_VALUE, "Client Correlation Value" },
        { KMIP_TAG_SERVER_CORRELATION_VALUE, "Server Correlation Value" },
        { KMIP_TAG_DIGESTED_DATA, "Digested Data" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_CN, "Certificate Subject CN" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_O, "Certificate Subject O" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_OU, "Certificate Subject OU" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_EMAIL, "Certificate Subject Email" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_C, "Certificate Subject C" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_ST, "Certificate Subject ST" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_L, "Certificate Subject L" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_UID, "Certificate Subject UID" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_SERIAL_NUMBER, "Certificate Subject Serial Number" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_TITLE, "Certificate Subject Title" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_DC, "Certificate Subject DC" },
        { KMIP_TAG_CERTIFICATE_SUBJECT_DN_QUALIFIER, "Certificate Subject DN Qualifier" },
        { KMIP_TAG_CERTIFICATE_ISSUER_CN, "Certificate Issuer CN" },
        { KMIP_TAG_CERTIFICATE_ISSUER_O, "Certificate Issuer O" },
        { KMIP_TAG_CERTIFICATE_ISSUER_OU, "Certificate Issuer OU" },
        { KMIP_TAG_CERTIFICATE_ISSUER_EMAIL, "Certificate Issuer Email" },
        { KMIP_TAG_CERTIFICATE_ISSUER_C, "Certificate Issuer C" },
        { KMIP_TAG_CERTIFICATE_ISSUER_ST, "Certificate Issuer ST" },
        { KMIP_TAG_CERTIFICATE_ISSUER_L, "Certificate Issuer L" },
        { KMIP_TAG_CERTIFICATE_ISSUER_UID, "Certificate Issuer UID" },
        { KMIP_TAG_CERTIFICATE_ISSUER_SERIAL_NUMBER, "Certificate Issuer Serial Number" },
        { KMIP_TAG_CERTIFICATE_ISSUER_TITLE, "Certificate Issuer Title" },
        { KMIP_TAG_CERTIFICATE_ISSUER_DC, "Certificate Issuer DC" },
        { KMIP_TAG_CERTIFICATE_ISSUER_DN_QUALIFIER, "Certificate Issuer DN Qualifier" },
        { KMIP_TAG_SENSITIVE, "Sensitive" },
        { KMIP_TAG_ALWAYS_SENSITIVE, "Always Sensitive" },
        { KMIP_TAG_EXTRACTABLE, "Extractable" },
        { KMIP_TAG_NEVER_EXTRACTABLE, "Never Extractable" },
        { KMIP_TAG_REPLACE_EXISTING, "Replace Existing" },
        { KMIP_TAG_ATTRIBUTES, "Attributes" },
        { KMIP_TAG_COMMON_ATTRIBUTES, "Common Attributes" },
        { KMIP_TAG_PRIVATE_KEY_ATTRIBUTES, "Private Key Attributes" },
        { KMIP_TAG_PUBLIC_KEY_ATTRIBUTES, "Public Key Attributes" },
        { KMIP_TAG_EXTENSION_ENUMERATION, "Extension Enumeration" },
        { KMIP_TAG_EXTENSION_ATTRIBUTE, "Extension Attribute" },
        { KMIP_TAG_EXTENSION_PARENT_STRUCTURE_TAG, "Extension Parent Structure Tag" },
        { KMIP_TAG_EXTENSION_DESCRIPTION, "Extension Description" },
        { KMIP_TAG_SERVER_NAME, "Server Name" },
        { KMIP_TAG_SERVER_SERIAL_NUMBER, "Server Serial Number" },
        { KMIP_TAG_SERVER_VERSION, "Server Version" },
        { KMIP_TAG_SERVER_LOAD, "Server Load" },
        { KMIP_TAG_PRODUCT_NAME, "Product Name" },
        { KMIP_TAG_BUILD_LEVEL, "Build Level" },
        { KMIP_TAG_BUILD_DATE, "Build Date" },
        { KMIP_TAG_CLUSTER_INFO, "Cluster Info" },
        { KMIP_TAG_ALTERNATE_FAILOVER_ENDPOINTS, "Alternate Failover Endpoints" },
        { KMIP_TAG_SHORT_UNIQUE_IDENTIFIER, "Short Unique Identifier" },
        { KMIP_TAG_RESERVED, "Reserved" },
        { KMIP_TAG_TAG, "Tag" },
        { KMIP_TAG_CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER, "Certificate Request Unique Identifier" },
        { KMIP_TAG_NIST_KEY_TYPE, "NIST Key Type" },
        { KMIP_TAG_ATTRIBUTE_REFERENCE, "Attribute Reference" },
        { KMIP_TAG_CURRENT_ATTRIBUTE, "Current Attribute" },
        { KMIP_TAG_NEW_ATTRIBUTE, "New Attribute" },
        { KMIP_TAG_CERTIFICATE_REQUEST_VALUE, "Certificate Request Value" },
        { KMIP_TAG_LOG_MESSAGE, "Log Message" },
        { KMIP_TAG_PROFILE_VERSION, "Profile Version" },
        { KMIP_TAG_PROFILE_VERSION_MAJOR, "Profile Version Major" },
        { KMIP_TAG_PROFILE_VERSION_MINOR, "Profile Version Minor" },
        { KMIP_TAG_PROTECTION_LEVEL, "Protection Level" },
        { KMIP_TAG_PROTECTION_PERIOD, "Protection Period" },
        { KMIP_TAG_QUANTUM_SAFE, "Quantum Safe" },
        { KMIP_TAG_QUANTUM_SAFE_CAPABILITY, "Quantum Safe Capability" },
        { KMIP_TAG_TICKET, "Ticket" },
        { KMIP_TAG_TICKET_TYPE, "Ticket Type" },
        { KMIP_TAG_TICKET_VALUE, "Ticket Value" },
        { KMIP_TAG_REQUEST_COUNT, "Request Count" },
        { KMIP_TAG_RIGHTS, "Rights" },
        { KMIP_TAG_OBJECTS, "Objects" },
        { KMIP_TAG_OPERATIONS, "Operations" },
        { KMIP_TAG_RIGHT, "Right" },
        { KMIP_TAG_ENDPOINT_ROLE, "Endpoint Role" },
        { KMIP_TAG_DEFAULTS_INFORMATION, "Defaults Information" },
        { KMIP_TAG_OBJECT_DEFAULTS, "Object Defaults" },
        { KMIP_TAG_EPHEMERAL, "Ephemeral" },
        { KMIP_TAG_SERVER_HASHED_PASSWORD, "Server Hashed Password" },
        { KMIP_TAG_ONE_TIME_PASSWORD, "One Time Password" },
        { KMIP_TAG_HASHED_PASSWORD, "Hashed Password" },
        { KMIP_TAG_ADJUSTMENT_TYPE, "Adjustment Type" },
        { KMIP_TAG_PKCS11_INTERFACE, "PKCS11 Interface" },
        { KMIP_TAG_PKCS11_FUNCTION, "PKCS11 Function" },
        { KMIP_TAG_PKCS11_INPUT_PARAMETERS, "PKCS11 Input Parameters" },
        { KMIP_TAG_PKCS11_OUTPUT_PARAMETERS, "PKCS11 Output Parameters" },
        { KMIP_TAG_PKCS11_RETURN_CODE, "PKCS11 Return Code" },
        { KMIP_TAG_PROTECTION_STORAGE_MASK, "Protection Storage Mask" },
        { KMIP_TAG_PROTECTION_STORAGE_MASKS, "Protection Storage Masks" },
        { KMIP_TAG_INTEROP_FUNCTION, "Interop Function" },
        { KMIP_TAG_INTEROP_IDENTIFIER, "Interop Identifier" },
        { KMIP_TAG_ADJUSTMENT_VALUE, "Adjustment Value" },
        { KMIP_TAG_COMMON_PROTECTION_STORAGE_MASKS, "Common Protection Storage Masks" },
        { KMIP_TAG_PRIVATE_PROTECTION_STORAGE_MASKS, "Private Protection Storage Masks" },
        { KMIP_TAG_PUBLIC_PROTECTION_STORAGE_MASKS, "Public Protection Storage Masks" },
        { KMIP_TAG_X_HOST_ID, "x-vmcrypt Host ID" },
        { KMIP_TAG_X_EK_PUBLIC, "x-vmcrypt EK Public" },
        { KMIP_TAG_X_AK_PUBLIC, "x-vmcrypt AK Public" },
        { KMIP_TAG_X_CREDENTIAL_BLOB, "x-vmcrypt Credential Blob" },
        { KMIP_TAG_X_ENCRYPTED_SECRET, "x-vmcrypt Encrypted Secret" },
        { KMIP_TAG_X_ACTIVATION_PROOF, "x-vmcrypt Activation Proof" },
        { KMIP_TAG_X_HOST_STATE, "x-vmcrypt Host State" },
        { KMIP_TAG_X_EK_CERTIFICATE, "x-vmcrypt EK Certificate" },
};

static int name_cmp(const void *k, const void *e) {
        uint32_t key = *(const uint32_t *) k, v = ((const struct name *) e)->value;
        return key < v ? -1 : key > v;
}

static const char *lookup_sorted(const struct name *table, size_t n, uint32_t value) {
        const struct name *e = bsearch(&value, table, n, sizeof(*table), name_cmp);
        return e ? e->name : "Unknown";
}

static const char *lookup(const struct name *table, size_t n, uint32_t value) {
        for (size_t i = 0; i < n; i++)
                if (table[i].value == value)
                        return table[i].name;
        return "Unknown";
}

const char *kmip_tag_name(uint32_t tag) {
        return lookup_sorted(tag_names, ELEMENTSOF(tag_names), tag);
}

static const struct name operation_names[] = {
        { KMIP_OP_CREATE, "Create" },
        { KMIP_OP_CREATE_KEY_PAIR, "Create Key Pair" },
        { KMIP_OP_REGISTER, "Register" },
        { KMIP_OP_REKEY, "Re-key" },
        { KMIP_OP_DERIVE_KEY, "Derive Key" },
        { KMIP_OP_CERTIFY, "Certify" },
        { KMIP_OP_RECERTIFY, "Re-certify" },
        { KMIP_OP_LOCATE, "Locate" },
        { KMIP_OP_CHECK, "Check" },
        { KMIP_OP_GET, "Get" },
        { KMIP_OP_GET_ATTRIBUTES, "Get Attributes" },
        { KMIP_OP_GET_ATTRIBUTE_LIST, "Get Attribute List" },
        { KMIP_OP_ADD_ATTRIBUTE, "Add Attribute" },
        { KMIP_OP_MODIFY_ATTRIBUTE, "Modify Attribute" },
        { KMIP_OP_DELETE_ATTRIBUTE, "Delete Attribute" },
        { KMIP_OP_OBTAIN_LEASE, "Obtain Lease" },
        { KMIP_OP_GET_USAGE_ALLOCATION, "Get Usage Allocation" },
        { KMIP_OP_ACTIVATE, "Activate" },
        { KMIP_OP_REVOKE, "Revoke" },
        { KMIP_OP_DESTROY, "Destroy" },
        { KMIP_OP_ARCHIVE, "Archive" },
        { KMIP_OP_RECOVER, "Recover" },
        { KMIP_OP_VALIDATE, "Validate" },
        { KMIP_OP_QUERY, "Query" },
        { KMIP_OP_CANCEL, "Cancel" },
        { KMIP_OP_POLL, "Poll" },
        { KMIP_OP_NOTIFY, "Notify" },
        { KMIP_OP_PUT, "Put" },
        { KMIP_OP_REKEY_KEY_PAIR, "Re-key Key Pair" },
        { KMIP_OP_DISCOVER_VERSIONS, "Discover Versions" },
        { KMIP_OP_X_ENROLL_HOST, "x-vmcrypt Enroll Host" },
        { KMIP_OP_ENCRYPT, "Encrypt" },
        { KMIP_OP_DECRYPT, "Decrypt" },
        { KMIP_OP_SIGN, "Sign" },
        { KMIP_OP_SIGNATURE_VERIFY, "Signature Verify" },
        { KMIP_OP_MAC, "MAC" },
        { KMIP_OP_MAC_VERIFY, "MAC Verify" },
        { KMIP_OP_RNG_RETRIEVE, "RNG Retrieve" },
        { KMIP_OP_RNG_SEED, "RNG Seed" },
        { KMIP_OP_HASH, "Hash" },
        { KMIP_OP_CREATE_SPLIT_KEY, "Create Split Key" },
        { KMIP_OP_JOIN_SPLIT_KEY, "Join Split Key" },
        { KMIP_OP_IMPORT, "Import" },
        { KMIP_OP_EXPORT, "Export" },
        { KMIP_OP_LOG, "Log" },
        { KMIP_OP_LOGIN, "Login" },
        { KMIP_OP_LOGOUT, "Logout" },
        { KMIP_OP_DELEGATED_LOGIN, "Delegated Login" },
        { KMIP_OP_ADJUST_ATTRIBUTE, "Adjust Attribute" },
        { KMIP_OP_SET_ATTRIBUTE, "Set Attribute" },
        { KMIP_OP_SET_ENDPOINT_ROLE, "Set Endpoint Role" },
        { KMIP_OP_PKCS_11, "PKCS#11" },
        { KMIP_OP_INTEROP, "Interop" },
        { KMIP_OP_REPROVISION, "Reprovision" },
};

const char *kmip_operation_name(uint32_t op) {
        return lookup(operation_names, ELEMENTSOF(operation_names), op);
}

static const struct name object_type_names[] = {
        { KMIP_OBJECT_CERTIFICATE, "Certificate" },
        { KMIP_OBJECT_SYMMETRIC_KEY, "Symmetric Key" },
        { KMIP_OBJECT_PUBLIC_KEY, "Public Key" },
        { KMIP_OBJECT_PRIVATE_KEY, "Private Key" },
        { KMIP_OBJECT_SPLIT_KEY, "Split Key" },
        { KMIP_OBJECT_TEMPLATE, "Template" },
        { KMIP_OBJECT_SECRET_DATA, "Secret Data" },
        { KMIP_OBJECT_OPAQUE_DATA, "Opaque Object" },
        { KMIP_OBJECT_PGP_KEY, "PGP Key" },
        { KMIP_OBJECT_CERTIFICATE_REQUEST, "Certificate Request" },
};

const char *kmip_object_type_name(uint32_t type) {
        return lookup(object_type_names, ELEMENTSOF(object_type_names), type);
}

static const struct name state_names[] = {
        { KMIP_STATE_PRE_ACTIVE, "Pre-Active" },
        { KMIP_STATE_ACTIVE, "Active" },
        { KMIP_STATE_DEACTIVATED, "Deactivated" },
        { KMIP_STATE_COMPROMISED, "Compromised" },
        { KMIP_STATE_DESTROYED, "Destroyed" },
        { KMIP_STATE_DESTROYED_COMPROMISED, "Destroyed Compromised" },
};

const char *kmip_state_name(uint32_t state) {
        return lookup(state_names, ELEMENTSOF(state_names), state);
}

static const struct name alg_names[] = {
        { KMIP_ALG_DES, "DES" },
        { KMIP_ALG_TRIPLE_DES, "3DES" },
        { KMIP_ALG_AES, "AES" },
        { KMIP_ALG_RSA, "RSA" },
        { KMIP_ALG_DSA, "DSA" },
        { KMIP_ALG_ECDSA, "ECDSA" },
        { KMIP_ALG_HMAC_SHA1, "HMAC-SHA1" },
        { KMIP_ALG_HMAC_SHA224, "HMAC-SHA224" },
        { KMIP_ALG_HMAC_SHA256, "HMAC-SHA256" },
        { KMIP_ALG_HMAC_SHA384, "HMAC-SHA384" },
        { KMIP_ALG_HMAC_SHA512, "HMAC-SHA512" },
        { KMIP_ALG_EC, "EC" },
        { KMIP_ALG_CHACHA20, "ChaCha20" },
        { KMIP_ALG_CHACHA20_POLY1305, "ChaCha20-Poly1305" },
};

const char *kmip_crypto_alg_name(uint32_t alg) {
        return lookup(alg_names, ELEMENTSOF(alg_names), alg);
}

static const struct name mode_names[] = {
        { KMIP_MODE_CBC, "CBC" },
        { KMIP_MODE_ECB, "ECB" },
        { KMIP_MODE_PCBC, "PCBC" },
        { KMIP_MODE_CFB, "CFB" },
        { KMIP_MODE_OFB, "OFB" },
        { KMIP_MODE_CTR, "CTR" },
        { KMIP_MODE_CMAC, "CMAC" },
        { KMIP_MODE_CCM, "CCM" },
        { KMIP_MODE_GCM, "GCM" },
        { KMIP_MODE_CBC_MAC, "CBC-MAC" },
        { KMIP_MODE_XTS, "XTS" },
        { KMIP_MODE_AES_KEY_WRAP_PADDING, "AES Key Wrap Padding" },
        { KMIP_MODE_NIST_KEY_WRAP, "NIST Key Wrap" },
        { KMIP_MODE_X9_102_AESKW, "X9.102 AESKW" },
        { KMIP_MODE_AEAD, "AEAD" },
};

const char *kmip_block_cipher_mode_name(uint32_t mode) {
        return lookup(mode_names, ELEMENTSOF(mode_names), mode);
}

static const struct name revocation_names[] = {
        { KMIP_REVOKE_UNSPECIFIED, "Unspecified" },
        { KMIP_REVOKE_KEY_COMPROMISE, "Key Compromise" },
        { KMIP_REVOKE_CA_COMPROMISE, "CA Compromise" },
        { KMIP_REVOKE_AFFILIATION_CHANGED, "Affiliation Changed" },
        { KMIP_REVOKE_SUPERSEDED, "Superseded" },
        { KMIP_REVOKE_CESSATION_OF_OPERATION, "Cessation of Operation" },
        { KMIP_REVOKE_PRIVILEGE_WITHDRAWN, "Privilege Withdrawn" },
};

const char *kmip_revocation_reason_name(uint32_t reason) {
        return lookup(revocation_names, ELEMENTSOF(revocation_names), reason);
}

/* Compare ignoring case and treating ' ', '-' and '_' alike. */
static bool name_matches(const char *table_name, const char *s) {
        for (;; table_name++, s++) {
                char a = *table_name, b = *s;
                if (a == '-' || a == '_')
                        a = ' ';
                if (b == '-' || b == '_')
                        b = ' ';
                if (tolower((unsigned char) a) != tolower((unsigned char) b))
                        return false;
                if (a == '\0')
                        return true;
        }
}

static int parse(const struct name *table, size_t n, const char *s, uint32_t *ret) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (name_matches(table[i].name, s)) {
                        *ret = table[i].value;
                        return 0;
                }
        return -EINVAL;
}

int kmip_object_type_from_name(const char *s, uint32_t *ret) {
        return parse(object_type_names, ELEMENTSOF(object_type_names), s, ret);
}

int kmip_state_from_name(const char *s, uint32_t *ret) {
        return parse(state_names, ELEMENTSOF(state_names), s, ret);
}

int kmip_revocation_reason_from_name(const char *s, uint32_t *ret) {
        return parse(revocation_names, ELEMENTSOF(revocation_names), s, ret);
}

int kmip_block_cipher_mode_from_name(const char *s, uint32_t *ret) {
        return parse(mode_names, ELEMENTSOF(mode_names), s, ret);
}
