#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "real.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static enum log_level log_threshold = LOG_LEVEL_WARN;
static enum log_format log_format = LOG_FORMAT_TEXT;
static int log_fd = STDERR_FILENO;

void
log_open(enum log_level level, enum log_format format, const char *path)
{
	int fd;

	log_threshold = level;
	log_format = format;
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

/* One write per line, so that concurrent processes do not interleave. */
static void
log_write(char *line, size_t len, size_t cap)
{
	if (len > cap - 2)
		len = cap - 2;
	line[len++] = '\n';
	if (real.write != NULL)
		(void)!real.write(log_fd, line, len);
	else
		(void)!write(log_fd, line, len);
}

/* Append ${s} as a JSON string value (quoted, escaped) at ${*used}. */
static void
json_string(char *out, size_t cap, size_t *used, const char *s)
{
	size_t u = *used;

	if (u < cap)
		out[u++] = '"';
	for (; s != NULL && *s != '\0' && u + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[u++] = '\\';
			out[u++] = (char)ch;
		} else if (ch < 0x20) {
			u += (size_t)snprintf(out + u, cap - u, "\\u%04x", ch);
		} else {
			out[u++] = (char)ch;
		}
	}
	if (u < cap)
		out[u++] = '"';
	*used = u;
}

/* Append ',"key":' and a string, when ${value} is set. */
static void
json_field(char *out, size_t cap, size_t *used, const char *key,
    const char *value)
{
	if (value == NULL || *used + strlen(key) + 8 >= cap)
		return;
	*used += (size_t)snprintf(out + *used, cap - *used, ",\"%s\":", key);
	json_string(out, cap, used, value);
}

/* Append ',"key":number', when ${value} >= 0. */
static void
json_number(char *out, size_t cap, size_t *used, const char *key,
    long long value)
{
	if (value < 0 || *used + strlen(key) + 30 >= cap)
		return;
	*used += (size_t)snprintf(out + *used, cap - *used, ",\"%s\":%lld", key,
	    value);
}

/* {"time":...,"pid":...,"program":...,"level":...: the common start. */
static size_t
json_start(char *out, size_t cap, enum log_level level)
{
	struct timeval tv;
	struct tm tm;
	size_t used;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	used = (size_t)snprintf(out, cap, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:"
	    "%02d.%03ldZ\",\"pid\":%d", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (long)(tv.tv_usec / 1000), (int)getpid());
	json_field(out, cap, &used, "program", program_invocation_short_name);
	json_field(out, cap, &used, "level", level_names[level]);
	return used;
}

static void
log_vmsg(enum log_level level, const struct log_event *e, const char *fmt,
    va_list ap)
{
	char line[2048], text[1024];
	int saved_errno = errno;
	size_t used;
	int n;

	if ((n = vsnprintf(text, sizeof(text), fmt, ap)) < 0)
		text[0] = '\0';
	if (log_format == LOG_FORMAT_TEXT) {
		n = snprintf(line, sizeof(line), "tlshim[%d]: %s: %s", (int)getpid(),
		    level_names[level], text);
		log_write(line, n < 0 ? 0 : (size_t)n, sizeof(line));
		errno = saved_errno;
		return;
	}
	used = json_start(line, sizeof(line) - 2, level);
	if (e != NULL) {
		json_field(line, sizeof(line) - 2, &used, "event", e->event);
		json_field(line, sizeof(line) - 2, &used, "role", e->role);
		json_field(line, sizeof(line) - 2, &used, "local", e->local);
		json_field(line, sizeof(line) - 2, &used, "peer", e->peer);
		json_field(line, sizeof(line) - 2, &used, "identity", e->identity);
		json_field(line, sizeof(line) - 2, &used, "suite", e->suite);
		json_field(line, sizeof(line) - 2, &used, "data_cipher",
		    e->data_cipher);
		json_number(line, sizeof(line) - 2, &used, "handshake_ms",
		    e->handshake_ms);
		json_number(line, sizeof(line) - 2, &used, "bytes_sent", e->sent);
		json_number(line, sizeof(line) - 2, &used, "bytes_received",
		    e->received);
		json_field(line, sizeof(line) - 2, &used, "reason", e->reason);
	}
	json_field(line, sizeof(line) - 2, &used, "message", text);
	if (used < sizeof(line) - 2)
		line[used++] = '}';
	log_write(line, used, sizeof(line));
	errno = saved_errno;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_event(enum log_level level, const struct log_event *e, const char *fmt,
    ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, e, fmt, ap);
	va_end(ap);
}

/* The rate limit's window: its start, lines written, lines suppressed. */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t limit_window;
static unsigned limit_written;
static unsigned long limit_suppressed;

/* May a line a hostile peer can cause be written now? */
static bool
limit_allows(void)
{
	struct timespec now;
	unsigned long suppressed = 0;
	bool write_it;

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
		log_msg(LOG_LEVEL_WARN, "%lu similar lines suppressed in the last "
		    "%d s (more than %d)", suppressed, LOG_WINDOW_S, LOG_BURST);
	return write_it;
}

void
log_msg_limited(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level) || !limit_allows())
		return;
	va_start(ap, fmt);
	log_vmsg(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_event_limited(enum log_level level, const struct log_event *e,
    const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level) || !limit_allows())
		return;
	va_start(ap, fmt);
	log_vmsg(level, e, fmt, ap);
	va_end(ap);
}
