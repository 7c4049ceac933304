/* `copy-self DEST`: atomic self-installation for init containers (contract §1.1). */
#ifndef SV_COPYSELF_H
#define SV_COPYSELF_H

#include "err.h"

/* Copy /proc/self/exe to @dest (a file path, or an existing directory: then DEST/<name>),
 * creating missing parent directories; mode 0755; atomic rename. */
int sv_copy_self(const char *dest, struct sv_err *err);

#endif
