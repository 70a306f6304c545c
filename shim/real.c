#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>

#include "real.h"

struct real_calls real;
int real_resolved;
__thread int shim_internal_thread;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void *
real_lookup(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void
real_resolve(void)
{
	/* Entries already set (a test's scripted transport) are kept. */
#define RESOLVE(name) \
	do { \
		if (real.name == NULL) \
			*(void **)&real.name = real_lookup(#name); \
	} while (0)
	RESOLVE(socket);
	RESOLVE(connect);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(close);
	RESOLVE(shutdown);
	RESOLVE(send);
	RESOLVE(recv);
	RESOLVE(sendto);
	RESOLVE(recvfrom);
	RESOLVE(sendmsg);
	RESOLVE(recvmsg);
	RESOLVE(sendmmsg);
	RESOLVE(recvmmsg);
	RESOLVE(read);
	RESOLVE(write);
	RESOLVE(readv);
	RESOLVE(writev);
	RESOLVE(poll);
	RESOLVE(ppoll);
	RESOLVE(select);
	RESOLVE(pselect);
	RESOLVE(fcntl);
	RESOLVE(ioctl);
	RESOLVE(getsockopt);
	RESOLVE(getpeername);
	RESOLVE(getsockname);
	RESOLVE(setsockopt);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(sendfile);
	RESOLVE(splice);
	RESOLVE(close_range);
	RESOLVE(closefrom);
	RESOLVE(pidfd_getfd);
	RESOLVE(syscall);
	RESOLVE(epoll_ctl);
	RESOLVE(epoll_wait);
	RESOLVE(epoll_pwait);
	RESOLVE(epoll_pwait2);
	RESOLVE(__recv_chk);
	RESOLVE(__recvfrom_chk);
	RESOLVE(__read_chk);
	RESOLVE(__poll_chk);
	RESOLVE(__ppoll_chk);
#undef RESOLVE
	__atomic_store_n(&real_resolved, 1, __ATOMIC_RELEASE);
}

void
real_init(void)
{
	pthread_once(&real_once, real_resolve);
}

#define REAL_INTERNAL_MAX 4

static int internal_fds[REAL_INTERNAL_MAX] = { -1, -1, -1, -1 };

void
real_fd_internal_add(int fd)
{
	int i;

	for (i = 0; i < REAL_INTERNAL_MAX; i++) {
		if (__atomic_load_n(&internal_fds[i], __ATOMIC_ACQUIRE) < 0) {
			__atomic_store_n(&internal_fds[i], fd, __ATOMIC_RELEASE);
			return;
		}
	}
}

void
real_fd_internal_remove(int fd)
{
	int i;

	for (i = 0; i < REAL_INTERNAL_MAX; i++)
		if (__atomic_load_n(&internal_fds[i], __ATOMIC_ACQUIRE) == fd)
			__atomic_store_n(&internal_fds[i], -1, __ATOMIC_RELEASE);
}

int
real_fd_internal(int fd)
{
	int i;

	for (i = 0; i < REAL_INTERNAL_MAX; i++)
		if (fd >= 0 && __atomic_load_n(&internal_fds[i],
		    __ATOMIC_ACQUIRE) == fd)
			return 1;
	return 0;
}

int
real_close_range_keeping(unsigned int first, unsigned int last, int flags)
{
	unsigned int from = first, fd;
	int rc = 0;

	real_ready();
	/* Close [first, last] in pieces that skip the shim's descriptors. */
	for (;;) {
		unsigned int next_kept = last;
		int found = 0, i;

		for (i = 0; i < REAL_INTERNAL_MAX; i++) {
			int k = __atomic_load_n(&internal_fds[i], __ATOMIC_ACQUIRE);

			if (k >= 0 && (unsigned)k >= from && (unsigned)k <= next_kept &&
			    (!found || (unsigned)k < next_kept)) {
				next_kept = (unsigned)k;
				found = 1;
			}
		}
		if (!found)
			return rc | real.close_range(from, last, flags);
		fd = next_kept;
		if (fd > from)
			rc |= real.close_range(from, fd - 1, flags);
		if (fd == last || fd == ~0u)
			return rc;
		from = fd + 1;
	}
}
