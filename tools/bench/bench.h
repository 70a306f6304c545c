#ifndef TLSHIM_BENCH_H
#define TLSHIM_BENCH_H

/*
 * tlshim-bench: what encryption costs, measured on the same workload with
 * the shim off and on in one run. One pair of processes with the shim
 * preloaded measures both: the plaintext port is excluded from protection
 * (TLSHIM_EXCLUDE, which matches the server's port, so both ends agree).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_SIZES 16
#define BENCH_MAX_COUNTS 4

/* What the --listen server does on a connection (the first bytes say). */
enum bench_test { T_SINK = 1, T_BOTH, T_PING, T_CONNECT };

/* One measured configuration: plaintext, tlshim, or stunnel. */
enum bench_path { PATH_PLAIN, PATH_TLSHIM, PATH_STUNNEL, PATH_COUNT };

struct bench_results {
	int nsizes;
	size_t sizes[BENCH_MAX_SIZES];
	/* Gbit/s, one way and each way when both directions run at once;
	 * 0 when not measured. */
	double one_way[PATH_COUNT][BENCH_MAX_SIZES];
	double both_ways[PATH_COUNT][BENCH_MAX_SIZES];
	double rtt_median_us[PATH_COUNT], rtt_p99_us[PATH_COUNT];
	double connect_median_ms[PATH_COUNT], connect_p99_ms[PATH_COUNT];
	double connects_per_s[PATH_COUNT];
	/* Small messages (small.c): requests/s, aggregate over threads, and
	 * new connections/s with concurrent connectors. */
	size_t small_size;
	int pipe_depth;
	double pipe_rate[PATH_COUNT];
	int nthreads, threads[BENCH_MAX_COUNTS];
	double rr_rate[PATH_COUNT][BENCH_MAX_COUNTS];
	int nconnectors, connectors[BENCH_MAX_COUNTS];
	double connect_rate[PATH_COUNT][BENCH_MAX_COUNTS];
	int ring_ranks;
	size_t ring_bytes;
	double ring_MBps[PATH_COUNT];
	char link[32];		/* "" or the tbf rate */
	char host[128];
};

/* Measurement (measure.c). */
/* bench_split_addr(text, host, hostlen, port): "ADDR:PORT" (IPv6 as
 * [ADDR]:PORT) into its parts. 0 or -1. */
int bench_split_addr(const char *text, char *host, size_t hostlen, int *port);
int bench_listen(const char *addrport);
int bench_measure(const char *host, int port, int stunnel_port, double seconds,
    struct bench_results *r);
double bench_now_s(void);
int bench_write_all(int fd, const void *buf, size_t len);
int bench_read_all(int fd, void *buf, size_t len);
/* A connection to the server, told what to do; the descriptor or -1. */
int bench_start_test(const char *host, int port, enum bench_test test,
    size_t size, uint64_t amount);
int bench_ring_rank(int rank, int size, const char *listen, const char *next,
    size_t bytes, double *MBps);

/* Small messages (small.c): pipelined requests, request/response from
 * many threads, concurrent connection setup, on every path. 0 or -1. */
int bench_measure_small(const char *host, int port, int stunnel_port,
    double seconds, struct bench_results *r);
void bench_print_small(const struct bench_results *r);
void bench_json_small(FILE *f, const struct bench_results *r);
void bench_csv_small(FILE *f, const struct bench_results *r);
void bench_svg_small(FILE *f, const struct bench_results *r, double x, double y,
    double w);
double bench_svg_small_height(const struct bench_results *r);

/* Reporting (report.c). */
void bench_print_table(const struct bench_results *r);
int bench_write_json(const char *path, const struct bench_results *r);
int bench_write_csv(const char *path, const struct bench_results *r);
int bench_write_svg(const char *path, const struct bench_results *r);

/* Orchestration on one host (netns.c). */
struct bench_options {
	double seconds;
	const char *link;
	const char *json, *csv, *svg;
	int ranks;
	size_t ring_bytes;
	size_t small_size;
	int pipe_depth;
	const char *threads, *connectors;	/* "1,16" style lists */
	int stunnel;
	int nsizes;
	size_t sizes[BENCH_MAX_SIZES];
};
int bench_netns(const char *self, const struct bench_options *o);

/* Parse "64,1K,16M" style sizes; returns the count or -1. */
int bench_parse_sizes(const char *text, size_t *sizes, int max);
/* Parse "1,2,4" style counts from 1 to ${limit}; the count or -1. */
int bench_parse_counts(const char *text, int *counts, int max, int limit);

#endif
