#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "conn.h"
#include "fdtab.h"
#include "log.h"
#include "progress.h"
#include "real.h"
#include "shim.h"
#include "uring_guard.h"

static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
static atomic_bool shim_ready;
static pid_t shim_pid;

static void
shim_fork_child(void)
{
	shim_pid = getpid();
	fdtab_fork_child();
	conn_fork_child();
	progress_fork_child();
}

static void
shim_setup(void)
{
	int rc;

	real_init();
	config_init();
	shim_pid = getpid();
	if (config.enabled && sodium_init() < 0 && config.error[0] == '\0')
		snprintf(config.error, sizeof(config.error),
		    "libsodium failed to initialise");
	if (config.enabled) {
		conn_set_background(progress_watch);
		pthread_atfork(NULL, NULL, shim_fork_child);
		/* libuv (>= 1.45) may add epoll interest through io_uring,
		 * which no hook sees; its documented switch keeps it on
		 * epoll_ctl. An explicit setting is the user's to keep. */
		setenv("UV_USE_IO_URING", "0", 0);
		/* Strict mode that cannot be enforced fails closed. */
		if (config.strict && (rc = uring_guard_install()) != 0 &&
		    config.error[0] == '\0') {
			snprintf(config.error, sizeof(config.error),
			    "TLSHIM_STRICT=1 but the kernel refused the io_uring "
			    "filter: %s", strerror(-rc));
			log_msg(LOG_LEVEL_ERROR, "invalid configuration: %s; every "
			    "connection that would be protected will fail",
			    config.error);
		}
	}
	atomic_store(&shim_ready, true);
}

bool
shim_enabled(void)
{
	if (!atomic_load_explicit(&shim_ready, memory_order_acquire))
		pthread_once(&shim_once, shim_setup);
	return config.enabled;
}

bool
shim_active(void)
{
	return atomic_load_explicit(&shim_ready, memory_order_acquire) &&
	    config.enabled;
}

bool
shim_in_vfork_child(void)
{
	return getpid() != shim_pid;
}

__attribute__((constructor)) static void
shim_constructor(void)
{
	(void)shim_enabled();
}

static void
close_one_at_exit(int fd, struct conn *c, void *arg)
{
	(void)fd;
	(void)arg;
	conn_close_at_exit(c);
}

__attribute__((destructor)) static void
shim_destructor(void)
{
	if (!atomic_load(&shim_ready) || !config.enabled || shim_in_vfork_child())
		return;
	fdtab_each(close_one_at_exit, NULL);
	/* Bounded by the handshake timeout plus a little for the data. */
	progress_drain(config.handshake_timeout_ms + 2000);
}
