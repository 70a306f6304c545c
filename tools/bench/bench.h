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

#define BENCH_MAX_SIZES 16

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
int bench_ring_rank(int rank, int size, const char *listen, const char *next,
    size_t bytes, double *MBps);

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
	int stunnel;
	int nsizes;
	size_t sizes[BENCH_MAX_SIZES];
};
int bench_netns(const char *self, const struct bench_options *o);

/* Parse "64,1K,16M" style sizes; returns the count or -1. */
int bench_parse_sizes(const char *text, size_t *sizes, int max);

#endif
