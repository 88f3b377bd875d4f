/* What trust.c and trust_run.c share; not part of libesky's interface (trust.h is). */
#ifndef ESKY_TRUST_INT_H
#define ESKY_TRUST_INT_H

#include <stddef.h>
#include <sys/types.h>

/* "nobody (uid 65534)", or "uid 65534" for an id without a name. */
void trust_user_name(uid_t uid, char *buf, size_t n);

/*
 * what belongs to owner, not to the user: -EPERM with the message, or for
 * root with ESKY_TRUST_FORCE 0 and a warning (none with ESKY_TRUST_QUIET).
 */
int trust_other_owner(const char *what, uid_t owner, unsigned flags);

#endif
