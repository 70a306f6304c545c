#ifndef TLSHIM_FDCLASS_H
#define TLSHIM_FDCLASS_H

/*
 * Descriptors that are not connections this process keyed: files, pipes,
 * Unix sockets, connections the policy leaves in clear, and connections
 * that arrived from elsewhere (inherited across execve, received over a
 * Unix socket with SCM_RIGHTS, taken with pidfd_getfd). The last kind, a
 * connected TCP socket the policy would protect, is "unkeyed": this
 * process has no keys for it, so its I/O must fail rather than carry
 * plaintext. Each descriptor is classified on its first I/O and the
 * answer cached: a plain file costs one byte load per call afterwards.
 */

#include <stdbool.h>

/*
 * fdclass_unkeyed(fd):
 * Must I/O on ${fd}, which is not in the fd table, fail? True for a
 * connected TCP socket that the policy protects (as either end's server
 * address) and that this process did not key. Logs the first time.
 */
bool fdclass_unkeyed(int fd);

/* fdclass_set_plain(fd): ${fd} is a connection the policy leaves in
 * clear, by this process's own decision (connect or accept). */
void fdclass_set_plain(int fd);

/* fdclass_copy(from, to): ${to} is now a duplicate of ${from}. */
void fdclass_copy(int from, int to);

/* fdclass_forget(fd), fdclass_forget_range(first, last): the descriptor
 * numbers were closed or now name something new: classify again. */
void fdclass_forget(int fd);
void fdclass_forget_range(unsigned int first, unsigned int last);

#endif
