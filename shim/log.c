#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "real.h"

static enum log_level log_threshold = LOG_LEVEL_WARN;
static int log_fd = STDERR_FILENO;

void
log_open(enum log_level level, const char *path)
{
	int fd;

	log_threshold = level;
	if (path == NULL || *path == '\0')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		log_fd = fd;
		real_fd_internal_add(fd);
	}
}

int
log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

static void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	int saved_errno = errno;
	int prefix, len;

	prefix = snprintf(line, sizeof(line), "tlshim[%d]: %s: ", (int)getpid(),
	    names[level]);
	len = vsnprintf(line + prefix, sizeof(line) - prefix - 1, fmt, ap);
	if (len < 0)
		len = 0;
	len += prefix;
	if (len > (int)sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line so concurrent processes do not interleave. */
	if (real.write != NULL)
		(void)!real.write(log_fd, line, len);
	else
		(void)!write(log_fd, line, len);
	errno = saved_errno;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* The rate limit's window: its start, lines written, lines suppressed. */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t limit_window;
static unsigned limit_written;
static unsigned long limit_suppressed;

void
log_msg_limited(enum log_level level, const char *fmt, ...)
{
	struct timespec now;
	unsigned long suppressed = 0;
	bool write_it;
	va_list ap;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&limit_lock);
	if (now.tv_sec - limit_window >= LOG_WINDOW_S) {
		limit_window = now.tv_sec;
		limit_written = 0;
		suppressed = limit_suppressed;
		limit_suppressed = 0;
	}
	write_it = limit_written < LOG_BURST;
	if (write_it)
		limit_written++;
	else
		limit_suppressed++;
	pthread_mutex_unlock(&limit_lock);
	if (suppressed > 0)
		log_msg(LOG_LEVEL_WARN, "%lu similar lines suppressed in the last %d s "
		    "(more than %d)", suppressed, LOG_WINDOW_S, LOG_BURST);
	if (!write_it)
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
