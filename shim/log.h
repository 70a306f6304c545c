#ifndef TLSHIM_LOG_H
#define TLSHIM_LOG_H

/* Named apart from <syslog.h>'s LOG_INFO and friends. */
enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

/*
 * log_open(level, path):
 * Send log lines at or above ${level} to the file ${path} (appended), or to
 * standard error when ${path} is NULL. Called once by config_init.
 */
void log_open(enum log_level level, const char *path);

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
