/*
 * tlshim-bench: the report. A table for people, JSON and CSV for
 * programs, and an SVG chart of throughput and latency.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const char *path_keys[PATH_COUNT] = { "plaintext", "tlshim", "stunnel" };

static void
size_text(size_t n, char *out, size_t len)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(out, len, "%zu MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(out, len, "%zu KiB", n >> 10);
	else
		snprintf(out, len, "%zu B", n);
}

static double
ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

void
bench_print_table(const struct bench_results *r)
{
	bool have_stunnel = r->one_way[PATH_STUNNEL][0] > 0;
	int i;

	printf("\ntlshim-bench: %s%s%s\n", r->host[0] ? "peer " : "", r->host,
	    r->link[0] ? "" : "");
	if (r->link[0])
		printf("link shaped to %s (tc tbf)\n", r->link);
	printf("\nthroughput, Gbit/s (one way | each way, both at once)\n");
	printf("%-9s %9s %9s %6s %s| %9s %9s %6s\n", "message", "plain", "tlshim",
	    "ratio", have_stunnel ? "  stunnel  ratio " : "", "plain", "tlshim",
	    "ratio");
	for (i = 0; i < r->nsizes; i++) {
		char sz[32];

		size_text(r->sizes[i], sz, sizeof(sz));
		printf("%-9s %9.2f %9.2f %6.2f ", sz, r->one_way[PATH_PLAIN][i],
		    r->one_way[PATH_TLSHIM][i], ratio(r->one_way[PATH_TLSHIM][i],
		    r->one_way[PATH_PLAIN][i]));
		if (have_stunnel)
			printf("%8.2f %6.2f ", r->one_way[PATH_STUNNEL][i],
			    ratio(r->one_way[PATH_STUNNEL][i],
			    r->one_way[PATH_PLAIN][i]));
		printf("| %9.2f %9.2f %6.2f\n", r->both_ways[PATH_PLAIN][i],
		    r->both_ways[PATH_TLSHIM][i], ratio(r->both_ways[PATH_TLSHIM][i],
		    r->both_ways[PATH_PLAIN][i]));
	}
	printf("\n64-byte ping-pong round trip, microseconds\n");
	printf("%-10s %9s %9s\n", "", "median", "p99");
	for (i = 0; i < PATH_COUNT; i++)
		if (r->rtt_median_us[i] > 0)
			printf("%-10s %9.1f %9.1f\n", path_keys[i], r->rtt_median_us[i],
			    r->rtt_p99_us[i]);
	printf("tlshim latency overhead (median): %+.1f %%\n",
	    (ratio(r->rtt_median_us[PATH_TLSHIM], r->rtt_median_us[PATH_PLAIN]) -
	    1) * 100);
	printf("\nconnection setup (connect, handshake, first round trip), ms\n");
	printf("%-10s %9s %9s %12s\n", "", "median", "p99", "per second");
	for (i = 0; i < PATH_COUNT; i++)
		if (r->connect_median_ms[i] > 0)
			printf("%-10s %9.3f %9.3f %12.0f\n", path_keys[i],
			    r->connect_median_ms[i], r->connect_p99_ms[i],
			    r->connects_per_s[i]);
	printf("\n");
	bench_print_small(r);
	if (r->ring_ranks > 0) {
		char sz[32];

		size_text(r->ring_bytes, sz, sizeof(sz));
		printf("\nring allreduce of %s among %d processes, MB/s per "
		    "process\n", sz, r->ring_ranks);
		printf("plaintext %.1f, tlshim %.1f (ratio %.2f)\n",
		    r->ring_MBps[PATH_PLAIN], r->ring_MBps[PATH_TLSHIM],
		    ratio(r->ring_MBps[PATH_TLSHIM], r->ring_MBps[PATH_PLAIN]));
	}
	printf("\n");
}

int
bench_write_json(const char *path, const struct bench_results *r)
{
	FILE *f = fopen(path, "w");
	int i, p;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	fprintf(f, "{\n  \"link\": \"%s\",\n  \"throughput_gbps\": [\n",
	    r->link[0] ? r->link : "veth");
	for (i = 0; i < r->nsizes; i++) {
		fprintf(f, "    {\"size\": %zu", r->sizes[i]);
		for (p = 0; p < PATH_COUNT; p++)
			if (r->one_way[p][i] > 0)
				fprintf(f, ", \"%s\": %.3f, \"%s_both_ways\": %.3f",
				    path_keys[p], r->one_way[p][i], path_keys[p],
				    r->both_ways[p][i]);
		fprintf(f, ", \"tlshim_ratio\": %.3f}%s\n",
		    ratio(r->one_way[PATH_TLSHIM][i], r->one_way[PATH_PLAIN][i]),
		    i + 1 < r->nsizes ? "," : "");
	}
	fprintf(f, "  ],\n  \"latency_us\": {");
	for (p = 0; p < PATH_COUNT; p++)
		if (r->rtt_median_us[p] > 0)
			fprintf(f, "%s\"%s\": {\"median\": %.2f, \"p99\": %.2f}",
			    p ? ", " : "", path_keys[p], r->rtt_median_us[p],
			    r->rtt_p99_us[p]);
	fprintf(f, "},\n  \"connect_ms\": {");
	for (p = 0; p < PATH_COUNT; p++)
		if (r->connect_median_ms[p] > 0)
			fprintf(f, "%s\"%s\": {\"median\": %.3f, \"p99\": %.3f, "
			    "\"per_second\": %.0f}", p ? ", " : "", path_keys[p],
			    r->connect_median_ms[p], r->connect_p99_ms[p],
			    r->connects_per_s[p]);
	fprintf(f, "},\n");
	bench_json_small(f, r);
	fprintf(f, "  \"ring_allreduce\": {\"ranks\": %d, \"bytes\": %zu, "
	    "\"plaintext_MBps\": %.1f, \"tlshim_MBps\": %.1f}\n}\n", r->ring_ranks,
	    r->ring_bytes, r->ring_MBps[PATH_PLAIN], r->ring_MBps[PATH_TLSHIM]);
	return fclose(f) == 0 ? 0 : -1;
}

int
bench_write_csv(const char *path, const struct bench_results *r)
{
	FILE *f = fopen(path, "w");
	int i, p;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	fprintf(f, "metric,size,path,value\n");
	for (p = 0; p < PATH_COUNT; p++) {
		for (i = 0; i < r->nsizes; i++) {
			if (r->one_way[p][i] <= 0)
				continue;
			fprintf(f, "throughput_gbps,%zu,%s,%.3f\n", r->sizes[i],
			    path_keys[p], r->one_way[p][i]);
			fprintf(f, "throughput_both_ways_gbps,%zu,%s,%.3f\n",
			    r->sizes[i], path_keys[p], r->both_ways[p][i]);
		}
		if (r->rtt_median_us[p] > 0) {
			fprintf(f, "rtt_median_us,64,%s,%.2f\n", path_keys[p],
			    r->rtt_median_us[p]);
			fprintf(f, "rtt_p99_us,64,%s,%.2f\n", path_keys[p],
			    r->rtt_p99_us[p]);
			fprintf(f, "connect_median_ms,,%s,%.3f\n", path_keys[p],
			    r->connect_median_ms[p]);
		}
	}
	bench_csv_small(f, r);
	if (r->ring_ranks > 0)
		for (p = 0; p < 2; p++)
			fprintf(f, "ring_allreduce_MBps,%zu,%s,%.1f\n", r->ring_bytes,
			    path_keys[p], r->ring_MBps[p]);
	return fclose(f) == 0 ? 0 : -1;
}

/* The chart: throughput against message size (log scale) on the left,
 * round-trip latency and connection setup bars on the right. */
int
bench_write_svg(const char *path, const struct bench_results *r)
{
	static const char *colours[PATH_COUNT] = { "#888888", "#1f77b4",
	    "#d62728" };
	const double W = 1100, x0 = 70, y0 = 50, pw = 520, ph = 300;
	const double H = 420 + bench_svg_small_height(r);
	double ymax = 0, lmin = log2((double)r->sizes[0]);
	double lmax = log2((double)r->sizes[r->nsizes - 1]), bmax = 0;
	FILE *f = fopen(path, "w");
	int i, p, t;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	for (p = 0; p < PATH_COUNT; p++)
		for (i = 0; i < r->nsizes; i++)
			if (r->one_way[p][i] > ymax)
				ymax = r->one_way[p][i];
	ymax = ceil(ymax / 5) * 5;
	if (ymax <= 0)
		ymax = 1;
	if (lmax <= lmin)
		lmax = lmin + 1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
	    "height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%.0f\" y=\"24\" font-size=\"16\">tlshim-bench: "
	    "throughput and latency%s%s</text>\n", x0, r->link[0] ? ", link " : "",
	    r->link);
	/* Axes and grid. */
	for (t = 0; t <= 5; t++) {
		double y = y0 + ph - ph * t / 5.0;

		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
		    "stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" "
		    "text-anchor=\"end\">%.0f</text>\n", x0, y, x0 + pw, y, x0 - 6,
		    y + 4, ymax * t / 5.0);
	}
	fprintf(f, "<text transform=\"translate(20,%.0f) rotate(-90)\" "
	    "text-anchor=\"middle\">Gbit/s, one way</text>\n", y0 + ph / 2);
	for (i = 0; i < r->nsizes; i++) {
		double x = x0 + pw * (log2((double)r->sizes[i]) - lmin) /
		    (lmax - lmin);
		char sz[32];

		size_text(r->sizes[i], sz, sizeof(sz));
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s"
		    "</text>\n", x, y0 + ph + 18, sz);
	}
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">message "
	    "size</text>\n", x0 + pw / 2, y0 + ph + 38);
	for (p = 0; p < PATH_COUNT; p++) {
		if (r->one_way[p][0] <= 0)
			continue;
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" "
		    "points=\"", colours[p]);
		for (i = 0; i < r->nsizes; i++)
			fprintf(f, "%.1f,%.1f ", x0 + pw * (log2((double)r->sizes[i]) -
			    lmin) / (lmax - lmin), y0 + ph - ph * r->one_way[p][i] /
			    ymax);
		fprintf(f, "\"/>\n");
		for (i = 0; i < r->nsizes; i++)
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
			    x0 + pw * (log2((double)r->sizes[i]) - lmin) / (lmax - lmin),
			    y0 + ph - ph * r->one_way[p][i] / ymax, colours[p]);
		fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"4\" "
		    "fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
		    x0 + 10, y0 + 8 + 16 * p, colours[p], x0 + 30, y0 + 13 + 16 * p,
		    path_keys[p]);
	}
	/* Latency bars: 64-byte round trip median, in microseconds. */
	for (p = 0; p < PATH_COUNT; p++)
		if (r->rtt_p99_us[p] > bmax)
			bmax = r->rtt_p99_us[p];
	if (bmax > 0) {
		double bx = x0 + pw + 90, bw = 260;

		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">64-byte round trip, "
		    "microseconds (bar: median, tick: p99)</text>\n", bx, y0);
		for (p = 0; p < PATH_COUNT; p++) {
			double y = y0 + 20 + 34 * p;

			if (r->rtt_median_us[p] <= 0)
				continue;
			fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" "
			    "height=\"18\" fill=\"%s\"/>\n", bx, y,
			    bw * r->rtt_median_us[p] / bmax, colours[p]);
			fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" "
			    "y2=\"%.0f\" stroke=\"black\"/>\n",
			    bx + bw * r->rtt_p99_us[p] / bmax, y - 2,
			    bx + bw * r->rtt_p99_us[p] / bmax, y + 20);
			fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">%s %.1f / %.1f</text>\n",
			    bx, y + 31, path_keys[p], r->rtt_median_us[p],
			    r->rtt_p99_us[p]);
		}
		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">connection setup, median: "
		    "plaintext %.3f ms, tlshim %.3f ms</text>\n", bx, y0 + 150,
		    r->connect_median_ms[PATH_PLAIN],
		    r->connect_median_ms[PATH_TLSHIM]);
		if (r->ring_ranks > 0)
			fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">ring allreduce, %d "
			    "processes: plaintext %.0f MB/s, tlshim %.0f MB/s</text>\n",
			    bx, y0 + 170, r->ring_ranks, r->ring_MBps[PATH_PLAIN],
			    r->ring_MBps[PATH_TLSHIM]);
	}
	if (bench_svg_small_height(r) > 0)
		bench_svg_small(f, r, x0, 420, 960 - x0);
	fprintf(f, "</svg>\n");
	return fclose(f) == 0 ? 0 : -1;
}
