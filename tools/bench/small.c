/*
 * tlshim-bench: small messages, where per-message costs show (training
 * control traffic: rendezvous stores, RPC, parameter servers, bootstrap
 * messages). Against the --listen server's echo (T_PING) and connect
 * (T_CONNECT) tests:
 *
 *   pipelined         DEPTH requests of SIZE bytes written one send()
 *                     each, then their DEPTH answers read (as redis-benchmark
 *                     -P does); requests/s
 *   request/response  N threads, each with its own connection, one
 *                     SIZE-byte request and its answer at a time;
 *                     round trips/s summed over the threads
 *   connections       N threads each connecting (TCP, the handshake,
 *                     one round trip) and closing, over and over;
 *                     connections/s summed
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define MAX_THREADS 256

static const char *path_keys[PATH_COUNT] = { "plaintext", "tlshim", "stunnel" };

static double
pipelined(const char *host, int port, size_t size, int depth, double seconds)
{
	int fd = bench_start_test(host, port, T_PING, size, 0);
	char *msg = calloc((size_t)depth, size);
	double t0, t;
	long done = 0;
	int i;

	if (fd < 0 || msg == NULL)
		goto fail;
	t0 = bench_now_s();
	do {
		for (i = 0; i < depth; i++)
			if (bench_write_all(fd, msg + (size_t)i * size, size) != 0)
				goto fail;
		if (bench_read_all(fd, msg, (size_t)depth * size) != 0)
			goto fail;
		done += depth;
	} while ((t = bench_now_s() - t0) < seconds);
	close(fd);
	free(msg);
	return done / t;
fail:
	if (fd >= 0)
		close(fd);
	free(msg);
	return 0;
}

/* What each thread of a many-thread test shares. */
struct crowd {
	const char *host;
	int port;
	size_t size;
	double seconds;
	pthread_barrier_t start;
	double t0;
	long done[MAX_THREADS];
	int failed;
};

struct worker {
	struct crowd *crowd;
	int index;
};

static void *
ping_worker(void *arg)
{
	struct worker *w = arg;
	struct crowd *c = w->crowd;
	int fd = bench_start_test(c->host, c->port, T_PING, c->size, 0);
	char *msg = calloc(1, c->size);
	long done = 0;

	/* Connections are up before the clock starts. */
	if (pthread_barrier_wait(&c->start) == PTHREAD_BARRIER_SERIAL_THREAD)
		c->t0 = bench_now_s();
	pthread_barrier_wait(&c->start);
	if (fd < 0 || msg == NULL) {
		c->failed = 1;
	} else {
		while (bench_now_s() - c->t0 < c->seconds) {
			if (bench_write_all(fd, msg, c->size) != 0 ||
			    bench_read_all(fd, msg, c->size) != 0) {
				c->failed = 1;
				break;
			}
			done++;
		}
	}
	c->done[w->index] = done;
	if (fd >= 0)
		close(fd);
	free(msg);
	return NULL;
}

static void *
connect_worker(void *arg)
{
	struct worker *w = arg;
	struct crowd *c = w->crowd;
	long done = 0;

	if (pthread_barrier_wait(&c->start) == PTHREAD_BARRIER_SERIAL_THREAD)
		c->t0 = bench_now_s();
	pthread_barrier_wait(&c->start);
	while (bench_now_s() - c->t0 < c->seconds) {
		int fd = bench_start_test(c->host, c->port, T_CONNECT, 1, 0);
		char k;

		if (fd < 0 || bench_read_all(fd, &k, 1) != 0) {
			if (fd >= 0)
				close(fd);
			c->failed = 1;
			break;
		}
		close(fd);
		done++;
	}
	c->done[w->index] = done;
	return NULL;
}

/* ${n} threads of ${fn} for the crowd's seconds; operations/s summed. */
static double
run_crowd(struct crowd *c, int n, void *(*fn)(void *))
{
	pthread_t th[MAX_THREADS];
	struct worker w[MAX_THREADS];
	long total = 0;
	double elapsed;
	int i;

	if (n < 1 || n > MAX_THREADS)
		return 0;
	c->failed = 0;
	pthread_barrier_init(&c->start, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		w[i] = (struct worker){ c, i };
		c->done[i] = 0;
		pthread_create(&th[i], NULL, fn, &w[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		total += c->done[i];
	}
	elapsed = bench_now_s() - c->t0;
	pthread_barrier_destroy(&c->start);
	return c->failed || elapsed <= 0 ? 0 : total / elapsed;
}

/* One small-message test: the kind and its thread count. */
enum small_kind { SMALL_PIPELINED, SMALL_ROUND_TRIPS, SMALL_CONNECTIONS };

static double
small_run(enum small_kind kind, int count, const char *host, int port,
    double seconds, const struct bench_results *r)
{
	struct crowd c = { .host = host, .port = port, .size = r->small_size,
	    .seconds = seconds };

	switch (kind) {
	case SMALL_PIPELINED:
		return pipelined(host, port, r->small_size, r->pipe_depth, seconds);
	case SMALL_ROUND_TRIPS:
		return run_crowd(&c, count, ping_worker);
	case SMALL_CONNECTIONS:
		return run_crowd(&c, count, connect_worker);
	}
	return 0;
}

/* Where the result of a test on a path goes. */
static double *
small_slot(struct bench_results *r, enum small_kind kind, int i, int path)
{
	switch (kind) {
	case SMALL_PIPELINED:
		return &r->pipe_rate[path];
	case SMALL_ROUND_TRIPS:
		return &r->rr_rate[path][i];
	default:
		return &r->connect_rate[path][i];
	}
}

int
bench_measure_small(const char *host, int port, int stunnel_port,
    double seconds, struct bench_results *r)
{
	struct test { enum small_kind kind; int i, count; } tests[1 +
	    2 * BENCH_MAX_COUNTS];
	int ntests = 0, t, round, k;

	tests[ntests++] = (struct test){ SMALL_PIPELINED, 0, 1 };
	for (k = 0; k < r->nthreads; k++)
		tests[ntests++] = (struct test){ SMALL_ROUND_TRIPS, k,
		    r->threads[k] };
	for (k = 0; k < r->nconnectors; k++)
		tests[ntests++] = (struct test){ SMALL_CONNECTIONS, k,
		    r->connectors[k] };
	/*
	 * Each test on every path in turn, twice, the second time in the
	 * reverse order, and the better of the two kept: what the machine
	 * was doing meanwhile (its other core, its clock) weighs on every
	 * path alike.
	 */
	for (t = 0; t < ntests; t++) {
		fprintf(stderr, "  small messages: %s, %d\n",
		    tests[t].kind == SMALL_PIPELINED ? "pipelined" :
		    tests[t].kind == SMALL_ROUND_TRIPS ? "round trips" :
		    "connections", tests[t].count);
		for (round = 0; round < 2; round++) {
			for (k = 0; k < PATH_COUNT; k++) {
				int p = round == 0 ? k : PATH_COUNT - 1 - k;
				const char *h = p == PATH_STUNNEL ? "127.0.0.1" : host;
				int pt = p == PATH_PLAIN ? port : p == PATH_TLSHIM ?
				    port + 1 : stunnel_port;
				double v, *slot = small_slot(r, tests[t].kind,
				    tests[t].i, p);

				if (p == PATH_STUNNEL && stunnel_port <= 0)
					continue;
				v = small_run(tests[t].kind, tests[t].count, h, pt,
				    seconds / 2, r);
				if (v <= 0) {
					fprintf(stderr, "tlshim-bench: %s: small-message "
					    "test failed\n", path_keys[p]);
					return -1;
				}
				if (v > *slot)
					*slot = v;
			}
		}
	}
	return 0;
}

static void
print_row(const char *label, const double *per_path, bool have_stunnel)
{
	printf("%-34s %10.0f %10.0f %6.2f", label, per_path[PATH_PLAIN],
	    per_path[PATH_TLSHIM], per_path[PATH_PLAIN] > 0 ?
	    per_path[PATH_TLSHIM] / per_path[PATH_PLAIN] : 0);
	if (have_stunnel)
		printf(" %10.0f %6.2f", per_path[PATH_STUNNEL],
		    per_path[PATH_PLAIN] > 0 ? per_path[PATH_STUNNEL] /
		    per_path[PATH_PLAIN] : 0);
	printf("\n");
}

void
bench_print_small(const struct bench_results *r)
{
	bool have_stunnel = r->pipe_rate[PATH_STUNNEL] > 0;
	double row[PATH_COUNT];
	char label[64];
	int i, p;

	if (r->pipe_rate[PATH_PLAIN] <= 0)
		return;
	printf("small messages of %zu B, per second\n", r->small_size);
	printf("%-34s %10s %10s %6s%s\n", "", "plain", "tlshim", "ratio",
	    have_stunnel ? "    stunnel  ratio" : "");
	snprintf(label, sizeof(label), "pipelined requests, depth %d",
	    r->pipe_depth);
	print_row(label, r->pipe_rate, have_stunnel);
	for (i = 0; i < r->nthreads; i++) {
		snprintf(label, sizeof(label), "round trips, %d thread%s",
		    r->threads[i], r->threads[i] > 1 ? "s" : "");
		for (p = 0; p < PATH_COUNT; p++)
			row[p] = r->rr_rate[p][i];
		print_row(label, row, have_stunnel);
	}
	for (i = 0; i < r->nconnectors; i++) {
		snprintf(label, sizeof(label), "new connections, %d connector%s",
		    r->connectors[i], r->connectors[i] > 1 ? "s" : "");
		for (p = 0; p < PATH_COUNT; p++)
			row[p] = r->connect_rate[p][i];
		print_row(label, row, have_stunnel);
	}
	printf("\n");
}

void
bench_json_small(FILE *f, const struct bench_results *r)
{
	int i, p;

	fprintf(f, "  \"small_messages\": {\"size\": %zu,\n    \"pipelined\": "
	    "{\"depth\": %d", r->small_size, r->pipe_depth);
	for (p = 0; p < PATH_COUNT; p++)
		if (r->pipe_rate[p] > 0)
			fprintf(f, ", \"%s\": %.0f", path_keys[p], r->pipe_rate[p]);
	fprintf(f, "},\n    \"round_trips\": [");
	for (i = 0; i < r->nthreads; i++) {
		fprintf(f, "%s{\"threads\": %d", i ? ", " : "", r->threads[i]);
		for (p = 0; p < PATH_COUNT; p++)
			if (r->rr_rate[p][i] > 0)
				fprintf(f, ", \"%s\": %.0f", path_keys[p],
				    r->rr_rate[p][i]);
		fprintf(f, "}");
	}
	fprintf(f, "],\n    \"connections\": [");
	for (i = 0; i < r->nconnectors; i++) {
		fprintf(f, "%s{\"connectors\": %d", i ? ", " : "",
		    r->connectors[i]);
		for (p = 0; p < PATH_COUNT; p++)
			if (r->connect_rate[p][i] > 0)
				fprintf(f, ", \"%s\": %.0f", path_keys[p],
				    r->connect_rate[p][i]);
		fprintf(f, "}");
	}
	fprintf(f, "]},\n");
}

void
bench_csv_small(FILE *f, const struct bench_results *r)
{
	int i, p;

	for (p = 0; p < PATH_COUNT; p++) {
		if (r->pipe_rate[p] <= 0)
			continue;
		fprintf(f, "pipelined_per_s_depth_%d,%zu,%s,%.0f\n", r->pipe_depth,
		    r->small_size, path_keys[p], r->pipe_rate[p]);
		for (i = 0; i < r->nthreads; i++)
			fprintf(f, "round_trips_per_s_threads_%d,%zu,%s,%.0f\n",
			    r->threads[i], r->small_size, path_keys[p],
			    r->rr_rate[p][i]);
		for (i = 0; i < r->nconnectors; i++)
			fprintf(f, "connections_per_s_connectors_%d,,%s,%.0f\n",
			    r->connectors[i], path_keys[p], r->connect_rate[p][i]);
	}
}

/* A row of bars per small-message test: tlshim's (and stunnel's) rate as
 * a fraction of plaintext's, with the line at 1.0; below ${y}, ${w} wide. */
void
bench_svg_small(FILE *f, const struct bench_results *r, double x, double y,
    double w)
{
	static const char *colours[PATH_COUNT] = { "#888888", "#1f77b4",
	    "#d62728" };
	const double label_w = 230, bar_w = w - label_w - 60, row_h = 22;
	double rows[2 + 2 * BENCH_MAX_COUNTS][PATH_COUNT], top = y + 28;
	char labels[2 + 2 * BENCH_MAX_COUNTS][64];
	double scale = 1.0;
	int n = 0, i, p;

	snprintf(labels[n], sizeof(labels[n]), "pipelined, depth %d",
	    r->pipe_depth);
	memcpy(rows[n++], r->pipe_rate, sizeof(rows[0]));
	for (i = 0; i < r->nthreads; i++) {
		snprintf(labels[n], sizeof(labels[n]), "round trips, %d thread%s",
		    r->threads[i], r->threads[i] > 1 ? "s" : "");
		for (p = 0; p < PATH_COUNT; p++)
			rows[n][p] = r->rr_rate[p][i];
		n++;
	}
	for (i = 0; i < r->nconnectors; i++) {
		snprintf(labels[n], sizeof(labels[n]), "new connections, %d at once",
		    r->connectors[i]);
		for (p = 0; p < PATH_COUNT; p++)
			rows[n][p] = r->connect_rate[p][i];
		n++;
	}
	for (i = 0; i < n; i++)
		for (p = PATH_TLSHIM; p < PATH_COUNT; p++)
			if (rows[i][PATH_PLAIN] > 0 &&
			    rows[i][p] / rows[i][PATH_PLAIN] > scale)
				scale = rows[i][p] / rows[i][PATH_PLAIN];
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\">small messages "
	    "(%zu B): rate as a fraction of plaintext (line: 1.0)</text>\n", x,
	    y + 14, r->small_size);
	for (i = 0; i < n; i++) {
		double ry = top + i * (2 * row_h - 8);

		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", x, ry + 14,
		    labels[i]);
		for (p = PATH_TLSHIM; p < PATH_COUNT; p++) {
			double v = rows[i][PATH_PLAIN] > 0 ?
			    rows[i][p] / rows[i][PATH_PLAIN] : 0;
			double by = ry + (p - PATH_TLSHIM) * (row_h - 5);

			if (v <= 0)
				continue;
			fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" "
			    "height=\"14\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.0f\">"
			    "%.2f</text>\n", x + label_w, by + 2, bar_w * v / scale,
			    colours[p], x + label_w + bar_w * v / scale + 4, by + 14, v);
		}
	}
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
	    "stroke=\"black\" stroke-dasharray=\"4 3\"/>\n", x + label_w +
	    bar_w / scale, top - 4, x + label_w + bar_w / scale,
	    top + n * (2 * row_h - 8));
}

/* Height bench_svg_small draws. */
double
bench_svg_small_height(const struct bench_results *r)
{
	if (r->pipe_rate[PATH_PLAIN] <= 0)
		return 0;
	return 40 + (1 + r->nthreads + r->nconnectors) * 36;
}
