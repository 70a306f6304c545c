/*
 * bench-policy: what the per-connection protection decision costs with a
 * job of 10,000 peers (a hostfile), beside a job without TLSHIM_PEERS.
 * Run by `make bench`; prints nanoseconds per decision.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../shim/config.h"
#include "../../shim/decide.h"

#define PEERS 10000
#define ROUNDS 2000000

static const char *peers_value;

static const char *
bench_getenv(const char *name)
{
	if (strcmp(name, "TLSHIM") == 0)
		return "1";
	if (strcmp(name, "TLSHIM_PEERS") == 0)
		return peers_value;
	return NULL;
}

/* Nanoseconds per decide_connect over addresses that are and are not
 * peers, half each. */
static double
per_decision(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timespec a, b;
	volatile int yes = 0;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < ROUNDS; i++) {
		uint32_t host = (uint32_t)(i % (2 * PEERS));

		sin.sin_addr.s_addr = htonl(0xc6120000u | host);	/* 198.18.x.y */
		sin.sin_port = htons(29500);
		yes += decide_connect((struct sockaddr *)&sin);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (yes == 0 && peers_value != NULL)
		fprintf(stderr, "bench-policy: no address was a peer\n");
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 +
	    (double)(b.tv_nsec - a.tv_nsec)) / ROUNDS;
}

int
main(void)
{
	char path[] = "/tmp/tlshim-bench-peers-XXXXXX";
	double without, with;
	FILE *f;
	int fd, i;

	config_load(&config, bench_getenv);
	without = per_decision();
	if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
		return 1;
	/* Every other address of 198.18.0.0/15 up to 10,000 nodes. */
	for (i = 0; i < PEERS; i++)
		fprintf(f, "198.18.%d.%d slots=8\n", (2 * i) / 256, (2 * i) % 256);
	fclose(f);
	peers_value = path;
	config_load(&config, bench_getenv);
	unlink(path);
	if (config.error[0] != '\0' || config.peers.count != PEERS) {
		fprintf(stderr, "bench-policy: %s\n", config.error);
		return 1;
	}
	with = per_decision();
	printf("policy decision per connection: %.0f ns with %d peers in a "
	    "hostfile, %.0f ns without TLSHIM_PEERS\n", with, PEERS, without);
	return 0;
}
