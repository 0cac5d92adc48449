/* The one mapping between errno values and KMIP Result Reasons, used on both sides:
 * the server turns a handler's -errno into the reason it sends, the client turns the
 * reason it receives into the -errno it returns.
 *
 *   -ENOENT       Item Not Found (2.0: also Object Not Found)
 *   -EIDRM        2.0 Object Destroyed (1.x peers: Item Not Found)
 *   -ENOKEY       2.0 Wrong Key Lifecycle State (1.x peers: Permission Denied)
 *   -EKEYREVOKED  sent as Wrong Key Lifecycle State / Permission Denied
 *   -EACCES       Permission Denied (2.0 Not Authorised too; Sensitive)
 *   -EXDEV        Not Extractable (1.0-1.3 peers: Permission Denied): the key
 *                 material may not leave the server
 *   -EKEYREJECTED Authentication Not Successful
 *   -EPERM        Illegal Operation
 *   -EPROTO       Invalid Message (malformed TTLV, wrong types)
 *   -EINVAL       Invalid Field
 *   -ENODATA      Missing Data
 *   -ENOSYS       Operation Not Supported
 *   -EOPNOTSUPP   Feature Not Supported
 *   -EBADMSG      Cryptographic Failure (e.g. authentication tag mismatch)
 *   -EMSGSIZE     Response Too Large
 *   -EEXIST       Object Already Exists
 *   -ERANGE       Index Out of Bounds
 *   -ECANCELED    Operation Canceled By Requester
 *   -EPROTONOSUPPORT 2.0 Unsupported Protocol Version (1.x peers: Invalid Message)
 *   -EIO and anything else: General Failure */
#pragma once

#include <stdint.h>

#include "kmip/message.h"

/* The Result Reason to send for a negative errno to a peer speaking version v. */
uint32_t kmip_reason_from_errno(int err, struct kmip_version v);
/* The negative errno for a received Result Reason (0 reason: -EIO). */
int kmip_reason_to_errno(uint32_t reason);
/* "Item Not Found", ...; "Unknown Reason" for others. */
const char *kmip_reason_name(uint32_t reason);
/* "Success", "Operation Failed", "Operation Pending", "Operation Undone". */
const char *kmip_status_name(uint32_t status);
