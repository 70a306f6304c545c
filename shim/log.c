#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "real.h"

static enum log_level log_threshold = LOG_WARN;
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

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	int saved_errno = errno;
	int prefix, len;
	va_list ap;

	if (!log_enabled(level))
		return;
	prefix = snprintf(line, sizeof(line), "tlshim[%d]: %s: ", (int)getpid(),
	    names[level]);
	va_start(ap, fmt);
	len = vsnprintf(line + prefix, sizeof(line) - prefix - 1, fmt, ap);
	va_end(ap);
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
