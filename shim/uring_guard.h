#ifndef TLSHIM_URING_GUARD_H
#define TLSHIM_URING_GUARD_H

/*
 * io_uring moves socket data without any libc call, past every hook. The
 * shim cannot protect it; it makes the bypass visible (a log line when a
 * process creates a ring through syscall()) and, in strict mode
 * (TLSHIM_STRICT=1), closes it: a seccomp filter makes the io_uring
 * system calls fail with ENOSYS, which liburing, libuv and Tokio treat as
 * "no io_uring here" and fall back to the hooked calls.
 */

/*
 * uring_guard_install(void):
 * In strict mode, install the filter for this process and every child (it
 * cannot be removed; it also sets no_new_privs, so setuid programs run
 * later do not gain privileges). Returns 0, or -errno when the kernel
 * refused, which the caller treats as a configuration error.
 */
int uring_guard_install(void) __attribute__((warn_unused_result));

/* uring_guard_note_setup(void): a ring is being created through syscall():
 * say once per process that its I/O bypasses the shim. */
void uring_guard_note_setup(void);

#endif
