#ifndef TLSHIM_LOG_H
#define TLSHIM_LOG_H

/* Named apart from <syslog.h>'s LOG_INFO and friends. */
enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

/* TLSHIM_LOG_FORMAT: lines of text, or one JSON object a line (an audit
 * trail: tlshim audit summarises it). */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/*
 * log_open(level, format, path):
 * Send log lines at or above ${level} to the file ${path} (appended), or to
 * standard error when ${path} is NULL. Called once by config_init.
 */
void log_open(enum log_level level, enum log_format format, const char *path);

/*
 * A connection event: with the JSON format its fields become the JSON
 * object's (NULL strings and negative numbers are left out); with text,
 * only the formatted message is written, as by log_msg.
 */
struct log_event {
	const char *event;	/* protected, closed, refused, clear */
	const char *role;	/* client or server */
	const char *local;	/* "198.18.0.1:4242" */
	const char *peer;	/* "198.18.0.2:29500" */
	const char *identity;	/* the peer's certificate's, once known */
	const char *suite;	/* the TLS suite */
	const char *data_cipher;
	long long handshake_ms;
	long long sent, received;	/* bytes, at close */
	const char *reason;	/* why refused */
};

/* log_event(level, e, fmt, ...), log_event_limited(...): write ${e}; the
 * second under the same limit as log_msg_limited. */
void log_event(enum log_level level, const struct log_event *e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void log_event_limited(enum log_level level, const struct log_event *e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * log_msg(level, fmt, ...):
 * Write one line "tlshim[PID]: LEVEL: message". Never changes errno. Callers
 * never pass key material: the log is meant to be shared with support.
 */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * log_msg_limited(level, fmt, ...):
 * As log_msg, for lines a hostile peer can cause once per connection
 * (refusals, failed records): at most LOG_BURST such lines per
 * LOG_WINDOW_S seconds in the process; the rest are counted and their
 * number reported in the next window's first line.
 */
#define LOG_BURST 20
#define LOG_WINDOW_S 10
void log_msg_limited(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* log_enabled(level): would a line at ${level} be written? */
int log_enabled(enum log_level level);

#endif
