#ifndef TLSHIM_FDTAB_H
#define TLSHIM_FDTAB_H

/*
 * Which descriptors are protected connections. Lookups of descriptors that
 * are not (every file read and write of the process) cost one atomic load.
 */

#include <stdbool.h>

struct conn;

/* fdtab_get(fd): the connection on ${fd} with a reference taken (release it
 * with conn_unref), or NULL. */
struct conn *fdtab_get(int fd);

/* fdtab_holds(fd, conn): is ${conn} the connection on ${fd} now? Takes no
 * reference and no lock (an identity check: compares addresses only). */
bool fdtab_holds(int fd, const struct conn *conn);

/* fdtab_has(fd): is ${fd} protected? No reference; a hint for hot paths. */
int fdtab_has(int fd);

/* fdtab_set(fd, conn): track ${conn} on ${fd} (taking a reference);
 * replaces and releases whatever was there. Returns 0 or -ENOMEM. */
int fdtab_set(int fd, struct conn *conn) __attribute__((warn_unused_result));

/* fdtab_take(fd): untrack ${fd}; returns the connection (its reference
 * passes to the caller) or NULL. */
struct conn *fdtab_take(int fd);

/* fdtab_each(fn, arg): call ${fn} on every tracked connection (with a
 * reference held for the call). */
void fdtab_each(void (*fn)(int fd, struct conn *conn, void *arg), void *arg);

/* fdtab_fork_child(void): after fork(), let go of what threads that do not
 * exist in the child were holding. */
void fdtab_fork_child(void);

#endif
