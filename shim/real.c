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
	RESOLVE(setsockopt);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(sendfile);
	RESOLVE(splice);
	RESOLVE(close_range);
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
