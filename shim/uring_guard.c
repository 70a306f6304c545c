#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "uring_guard.h"

#if defined(__x86_64__)
#define GUARD_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define GUARD_ARCH AUDIT_ARCH_AARCH64
#endif

/* The io_uring calls have these numbers on every architecture (the
 * unified table since Linux 5.1); x32 adds its bit on x86_64. */
#define X32_BIT 0x40000000

int
uring_guard_install(void)
{
#ifdef GUARD_ARCH
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GUARD_ARCH, 0, 8),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 5, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, X32_BIT | __NR_io_uring_setup,
		    2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, X32_BIT | __NR_io_uring_enter,
		    1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
		    X32_BIT | __NR_io_uring_register, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		return -errno;
	log_msg(LOG_LEVEL_INFO, "strict mode: io_uring is unavailable to this "
	    "process and its children (ENOSYS)");
	return 0;
#else
	return -ENOSYS;
#endif
}

void
uring_guard_note_setup(void)
{
	static atomic_bool said;

	if (!atomic_exchange(&said, true))
		log_msg(LOG_LEVEL_WARN, "this process creates an io_uring: socket I/O "
		    "through it bypasses tlshim and goes out unprotected "
		    "(TLSHIM_STRICT=1 makes io_uring unavailable)");
}
