/* The key state machine (KMIP 1.4 §3.22): which transitions Activate, Revoke and
 * Destroy may make, and the dates each one sets. */
#pragma once

#include "kms/kms.h"

/* Run change() on the object uid under its lock and store it durably. */
int lifecycle_update(struct kms_op *op, int (*change)(struct kms_op *op, struct kms_object *o));
