/* tlshim-bench: options, then measure, serve, or run a ring rank. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tlshim-bench [--seconds S] [--sizes LIST] [--link RATE]\n"
	    "                    [--ranks N] [--ring-bytes SIZE] [--no-stunnel]\n"
	    "                    [--small-size SIZE] [--pipeline DEPTH]\n"
	    "                    [--threads LIST] [--connectors LIST]\n"
	    "                    [--json FILE] [--csv FILE] [--svg FILE]\n"
	    "         two network namespaces on this host (needs root)\n"
	    "       tlshim-bench --listen ADDR:PORT\n"
	    "         serve: plaintext on PORT, tlshim on PORT+1\n"
	    "       tlshim-bench --connect ADDR:PORT [--seconds S] [--sizes LIST]\n"
	    "                    [--small-size SIZE] [--pipeline DEPTH]\n"
	    "                    [--threads LIST] [--connectors LIST]\n"
	    "                    [--json FILE] [--csv FILE] [--svg FILE]\n"
	    "         measure against a --listen peer on another host\n"
	    "\n"
	    "Between two hosts, start both ends with the shim preloaded and\n"
	    "credentials configured (LD_PRELOAD=libtlshim.so TLSHIM=1\n"
	    "TLSHIM_DIR=...); tlshim-bench excludes the plaintext port from\n"
	    "protection by itself, on both ends, so one run measures both.\n"
	    "--link RATE shapes the veth pair with tc tbf (e.g. 10gbit).\n"
	    "Small messages (default 64 B): DEPTH pipelined requests (16;\n"
	    "0 leaves the small-message tests out), request/response from\n"
	    "each count of threads in LIST (1,16), each its own connection,\n"
	    "and new connections from each count of concurrent connectors\n"
	    "(1,2,4).\n"
	    "Sizes take K, M and G suffixes (powers of two).\n");
}

int
bench_parse_sizes(const char *text, size_t *sizes, int max)
{
	char *copy = strdup(text), *item, *save = NULL;
	int n = 0;

	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		char *end;
		double v = strtod(item, &end);

		if (*end == 'K' || *end == 'k')
			v *= 1024, end++;
		else if (*end == 'M' || *end == 'm')
			v *= 1024 * 1024, end++;
		else if (*end == 'G' || *end == 'g')
			v *= 1024.0 * 1024 * 1024, end++;
		if (*end != '\0' || v < 1 || v > (256.0 * 1024 * 1024) || n == max) {
			free(copy);
			return -1;
		}
		sizes[n++] = (size_t)v;
	}
	free(copy);
	return n;
}

int
bench_parse_counts(const char *text, int *counts, int max, int limit)
{
	char *copy = strdup(text), *item, *save = NULL;
	int n = 0;

	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		char *end;
		long v = strtol(item, &end, 10);

		if (*end != '\0' || v < 1 || v > limit || n == max) {
			free(copy);
			return -1;
		}
		counts[n++] = (int)v;
	}
	free(copy);
	return n;
}

/*
 * Both ends must exclude the plaintext port from protection; the shim
 * reads its configuration once, at start, so a process that lacks the
 * rule re-executes itself with it.
 */
static void
exclude_plain_port(int port, char **argv)
{
	const char *pre = getenv("LD_PRELOAD"), *old = getenv("TLSHIM_EXCLUDE");
	char rule[512], self[4096];
	ssize_t n;

	if (pre == NULL || strstr(pre, "tlshim") == NULL ||
	    getenv("TLSHIM_BENCH_EXCLUDED") != NULL)
		return;
	snprintf(rule, sizeof(rule), "%s%s0.0.0.0/0:%d,[::/0]:%d",
	    old ? old : "", old && *old ? "," : "", port, port);
	setenv("TLSHIM_EXCLUDE", rule, 1);
	setenv("TLSHIM_BENCH_EXCLUDED", "1", 1);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = '\0';
	execv(self, argv);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "sizes", required_argument, NULL, 'z' },
		{ "link", required_argument, NULL, 'L' },
		{ "ranks", required_argument, NULL, 'n' },
		{ "ring-bytes", required_argument, NULL, 'b' },
		{ "no-stunnel", no_argument, NULL, 'S' },
		{ "small-size", required_argument, NULL, 'm' },
		{ "pipeline", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "connectors", required_argument, NULL, 'C' },
		{ "stunnel-port", required_argument, NULL, 'P' },
		{ "json", required_argument, NULL, 'j' },
		{ "csv", required_argument, NULL, 'v' },
		{ "svg", required_argument, NULL, 'g' },
		{ "ring", required_argument, NULL, 'r' },
		{ "results-from", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_options o = { .seconds = 1.0, .ranks = 4,
	    .ring_bytes = 16u << 20, .stunnel = 1, .small_size = 64,
	    .pipe_depth = 16, .threads = "1,16", .connectors = "1,2,4" };
	static struct bench_results r;
	const char *listen_at = NULL, *connect_to = NULL, *ring = NULL;
	const char *ring_results = NULL;
	int ch, stunnel_port = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	o.nsizes = bench_parse_sizes("64,1K,16K,256K,1M,4M,16M,64M", o.sizes,
	    BENCH_MAX_SIZES);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_at = optarg; break;
		case 'c': connect_to = optarg; break;
		case 's': o.seconds = atof(optarg); break;
		case 'z':
			if ((o.nsizes = bench_parse_sizes(optarg, o.sizes,
			    BENCH_MAX_SIZES)) <= 0) {
				fprintf(stderr, "tlshim-bench: bad --sizes\n");
				return 1;
			}
			break;
		case 'L': o.link = optarg; break;
		case 'n': o.ranks = atoi(optarg); break;
		case 'b': {
			size_t one;

			if (bench_parse_sizes(optarg, &one, 1) != 1)
				return 1;
			o.ring_bytes = one;
			break;
		}
		case 'S': o.stunnel = 0; break;
		case 'm':
			if (bench_parse_sizes(optarg, &o.small_size, 1) != 1 ||
			    o.small_size > (1u << 20)) {
				fprintf(stderr, "tlshim-bench: bad --small-size\n");
				return 1;
			}
			break;
		case 'p': o.pipe_depth = atoi(optarg); break;
		case 't': o.threads = optarg; break;
		case 'C': o.connectors = optarg; break;
		case 'P': stunnel_port = atoi(optarg); break;
		case 'j': o.json = optarg; break;
		case 'v': o.csv = optarg; break;
		case 'g': o.svg = optarg; break;
		case 'r': ring = optarg; break;
		case 'R': ring_results = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	r.small_size = o.small_size;
	r.pipe_depth = o.pipe_depth;
	if ((r.nthreads = bench_parse_counts(o.threads, r.threads,
	    BENCH_MAX_COUNTS, 256)) < 0 ||
	    (r.nconnectors = bench_parse_counts(o.connectors, r.connectors,
	    BENCH_MAX_COUNTS, 64)) < 0 || o.pipe_depth < 0 ||
	    o.pipe_depth > 1024) {
		fprintf(stderr, "tlshim-bench: bad --pipeline, --threads or "
		    "--connectors (counts: up to 4 in a list)\n");
		return 1;
	}
	if (o.seconds <= 0 || o.seconds > 600 || o.ranks < 2 || o.ranks > 64) {
		usage(stderr);
		return 1;
	}
	if (ring != NULL) {
		/* Internal: --ring RANK,SIZE,LISTEN,NEXT (for the orchestrator). */
		char l[160], nx[160];
		int rank, size;
		double MBps = 0;

		if (sscanf(ring, "%d,%d,%159[^,],%159s", &rank, &size, l, nx) != 4)
			return 1;
		if (bench_ring_rank(rank, size, l, nx, o.ring_bytes, &MBps) != 0)
			return 1;
		if (rank == 0)
			printf("ring %.1f\n", MBps);
		return 0;
	}
	if (listen_at != NULL) {
		char host[128];
		int port;

		if (bench_split_addr(listen_at, host, sizeof(host), &port) == 0)
			exclude_plain_port(port, argv);
		return bench_listen(listen_at);
	}
	if (connect_to != NULL) {
		char host[128];
		int port, i;

		if (bench_split_addr(connect_to, host, sizeof(host), &port) != 0) {
			usage(stderr);
			return 1;
		}
		exclude_plain_port(port, argv);
		r.nsizes = o.nsizes;
		for (i = 0; i < o.nsizes; i++)
			r.sizes[i] = o.sizes[i];
		snprintf(r.host, sizeof(r.host), "%s", host);
		if (o.link != NULL)
			snprintf(r.link, sizeof(r.link), "%s", o.link);
		if (ring_results != NULL)
			sscanf(ring_results, "%d,%zu,%lf,%lf,%lf", &r.ring_ranks,
			    &r.ring_bytes, &r.ring_MBps[PATH_PLAIN],
			    &r.ring_MBps[PATH_TLSHIM], &r.ring_MBps[PATH_STUNNEL]);
		if (bench_measure(host, port, stunnel_port, o.seconds, &r) != 0)
			return 1;
		bench_print_table(&r);
		if ((o.json && bench_write_json(o.json, &r)) ||
		    (o.csv && bench_write_csv(o.csv, &r)) ||
		    (o.svg && bench_write_svg(o.svg, &r)))
			return 1;
		return 0;
	}
	return bench_netns(argv[0], &o);
}
