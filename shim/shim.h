#ifndef TLSHIM_SHIM_H
#define TLSHIM_SHIM_H

/*
 * Process-wide setup: the real-call table, the configuration, fork
 * handlers, and the close records sent as the process exits.
 */

#include <stdbool.h>

/* shim_enabled(void): initialise on first use; is TLSHIM=1? */
bool shim_enabled(void);

/* shim_active(void): set up and on? Never sets up: for hooks that other
 * libraries' constructors and allocators reach early (jemalloc opens
 * files with syscall() while holding its own locks). */
bool shim_active(void);

/* shim_in_vfork_child(void): are we a vfork() child borrowing the
 * parent's memory? It must not change the parent's state. */
bool shim_in_vfork_child(void);

/* HOOK_RETURN(type, expr): return from a hook whose libc call returns
 * ${type}: an internal "count or -errno" ${expr} becomes the count, or -1
 * with errno set; the only place errno is set. */
#define HOOK_RETURN(type, expr) \
	do { \
		type hook_rc_ = (expr); \
		if (hook_rc_ < 0) { \
			errno = (int)-hook_rc_; \
			return -1; \
		} \
		return hook_rc_; \
	} while (0)

#endif
