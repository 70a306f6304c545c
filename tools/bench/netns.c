/*
 * tlshim-bench on one host: two network namespaces joined by a veth pair
 * (198.18.0.1 and 198.18.0.2), optionally shaped with tc tbf, a --listen
 * server on one and the measuring client on the other, both with the shim
 * preloaded, an stunnel mTLS pair for comparison when stunnel is
 * installed, and ring allreduce ranks split across the two. Everything is
 * removed on exit, also after Ctrl-C.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define PORT 7800
#define STUNNEL_SERVER_PORT 7850
#define STUNNEL_CLIENT_PORT 7851
#define RING_PLAIN_BASE 7900
#define RING_TLSHIM_BASE 8000

static char tmpdir[64];
static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static pid_t children[80];
static int nchildren;
static int made_tmp, made_ns;

static void
cleanup(void)
{
	char cmd[512];
	int i;

	for (i = 0; i < nchildren; i++)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	for (i = 0; i < nchildren; i++)
		if (children[i] > 0)
			(void)waitpid(children[i], NULL, 0);
	nchildren = 0;
	if (made_ns) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; "
		    "ip netns del %s 2>/dev/null", ns_a, ns_b);
		(void)!system(cmd);
		made_ns = 0;
	}
	if (made_tmp) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		(void)!system(cmd);
		made_tmp = 0;
	}
}

static void
on_signal(int sig)
{
	(void)sig;
	fprintf(stderr, "tlshim-bench: interrupted, cleaning up\n");
	exit(130);
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command line built from ${fmt}; 0 when it succeeded. */
static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "tlshim-bench: failed: %s\n", cmd);
	return rc;
}

/* Start a shell command line in the background; its output to ${out}
 * (NULL: inherited). */
static pid_t
spawn(const char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static pid_t
spawn(const char *out, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if ((pid = fork()) == 0) {
		if (out != NULL && freopen(out, "w", stdout) == NULL)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && nchildren < (int)(sizeof(children) / sizeof(children[0])))
		children[nchildren++] = pid;
	return pid;
}

static int
wait_child(pid_t pid)
{
	int status, i;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	for (i = 0; i < nchildren; i++)
		if (children[i] == pid)
			children[i] = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
wait_listening(const char *ns, int port)
{
	int i;

	for (i = 0; i < 200; i++) {
		if (sh("ip netns exec %s ss -ltnH 'sport = :%d' | grep -q .", ns,
		    port) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static int
setup_namespaces(const char *link)
{
	snprintf(ns_a, sizeof(ns_a), "tlshim-bench-a%d", (int)getpid());
	snprintf(ns_b, sizeof(ns_b), "tlshim-bench-b%d", (int)getpid());
	snprintf(veth_a, sizeof(veth_a), "tba%d", (int)getpid() % 100000);
	snprintf(veth_b, sizeof(veth_b), "tbb%d", (int)getpid() % 100000);
	made_ns = 1;
	if (sh("ip netns add %s && ip netns add %s", ns_a, ns_b) ||
	    sh("ip link add %s type veth peer name %s", veth_a, veth_b) ||
	    sh("ip link set %s netns %s && ip link set %s netns %s", veth_a, ns_a,
	    veth_b, ns_b) ||
	    sh("ip -n %s addr add 198.18.0.1/24 dev %s && ip -n %s link set %s up"
	    " && ip -n %s link set lo up", ns_a, veth_a, ns_a, veth_a, ns_a) ||
	    sh("ip -n %s addr add 198.18.0.2/24 dev %s && ip -n %s link set %s up"
	    " && ip -n %s link set lo up", ns_b, veth_b, ns_b, veth_b, ns_b))
		return -1;
	/* New connections by the thousand: ports in TIME_WAIT are taken
	 * again (the client's namespace only). */
	if (sh("ip netns exec %s sysctl -qw net.ipv4.tcp_tw_reuse=1", ns_a))
		return -1;
	if (link != NULL &&
	    (sh("ip netns exec %s tc qdisc add dev %s root tbf rate %s burst 4mb "
	    "latency 20ms", ns_a, veth_a, link) ||
	    sh("ip netns exec %s tc qdisc add dev %s root tbf rate %s burst 4mb "
	    "latency 20ms", ns_b, veth_b, link)))
		return -1;
	return 0;
}

static int
write_stunnel_conf(const char *path, const char *creds, int client,
    const char *accept, const char *connect)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fprintf(f, "foreground = yes\npid =\n[bench]\nclient = %s\n"
	    "accept = %s\nconnect = %s\ncert = %s/node.crt\nkey = %s/node.key\n"
	    "CAfile = %s/ca.crt\nverifyChain = yes\nsslVersionMin = TLSv1.3\n",
	    client ? "yes" : "no", accept, connect, creds, creds, creds);
	return fclose(f);
}

/* Ring allreduce with N ranks split across the nodes; MB/s of rank 0. */
static double
run_ring(const char *self, const char *shim_a, const char *shim_b, int ranks,
    size_t bytes, int base)
{
	char out[PATH_MAX], line[128] = "";
	pid_t pids[64];
	double MBps = 0;
	int r, ok = 1;
	FILE *f;

	snprintf(out, sizeof(out), "%s/ring.out", tmpdir);
	for (r = 0; r < ranks; r++) {
		int node = r < ranks / 2 ? 1 : 2, next = (r + 1) % ranks;
		int next_node = next < ranks / 2 ? 1 : 2;

		pids[r] = spawn(r == 0 ? out : "/dev/null",
		    "exec ip netns exec %s env %s %s --ring-bytes %zu "
		    "--ring %d,%d,198.18.0.%d:%d,198.18.0.%d:%d",
		    node == 1 ? ns_a : ns_b, node == 1 ? shim_a : shim_b, self,
		    bytes, r, ranks, node,
		    base + r, next_node, base + next);
	}
	for (r = 0; r < ranks; r++)
		if (wait_child(pids[r]) != 0)
			ok = 0;
	if (ok && (f = fopen(out, "r")) != NULL) {
		if (fgets(line, sizeof(line), f) != NULL)
			sscanf(line, "ring %lf", &MBps);
		fclose(f);
	}
	return MBps;
}

int
bench_netns(const char *argv0, const struct bench_options *o)
{
	char self[PATH_MAX], dir[PATH_MAX], lib[PATH_MAX + 32], keys[PATH_MAX + 32];
	char shim_a[2 * PATH_MAX + 256], shim_b[2 * PATH_MAX + 256];
	char sizes[256] = "", extra[1024] = "";
	char conf[PATH_MAX];
	double ring_plain = 0, ring_tlshim = 0;
	int i, stunnel_port = 0, rc;
	pid_t server, client;
	ssize_t n;

	(void)argv0;
	if (geteuid() != 0) {
		fprintf(stderr, "tlshim-bench: on one host it needs root to create "
		    "network namespaces; between two hosts use --listen and "
		    "--connect (see --help)\n");
		return 1;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return 1;
	self[n] = '\0';
	{
		char copy[PATH_MAX];

		snprintf(copy, sizeof(copy), "%s", self);
		snprintf(dir, sizeof(dir), "%s", dirname(copy));
	}
	snprintf(lib, sizeof(lib), "%.4000s", getenv("TLSHIM_LIB") ?
	    getenv("TLSHIM_LIB") : "");
	if (lib[0] == '\0')
		snprintf(lib, sizeof(lib), "%s/libtlshim.so", dir);
	snprintf(keys, sizeof(keys), "%s/tlshim-keys", dir);
	if (access(lib, R_OK) != 0 || access(keys, X_OK) != 0) {
		fprintf(stderr, "tlshim-bench: needs %s and %s (set TLSHIM_LIB)\n",
		    lib, keys);
		return 1;
	}
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	/* mkdtemp's template: six Xs after the prefix. */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tlshim-bench.");
	memset(tmpdir + strlen(tmpdir), 'X', 6);
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	made_tmp = 1;
	if (sh("%s init --dir %s/ca --name bench >/dev/null && "
	    "%s issue --ca %s/ca --node a --ip 198.18.0.1 --out %s/a >/dev/null "
	    "&& %s issue --ca %s/ca --node b --ip 198.18.0.2 --out %s/b "
	    ">/dev/null", keys, tmpdir,
	    keys, tmpdir, tmpdir, keys, tmpdir, tmpdir) != 0)
		return 1;
	if (setup_namespaces(o->link) != 0)
		return 1;

	/* Both ends: the shim on, the plaintext ports excluded. */
	for (i = 0; i < 2; i++)
		snprintf(i == 0 ? shim_a : shim_b, sizeof(shim_a),
		    "LD_PRELOAD=%.4100s TLSHIM=1 TLSHIM_DIR=%s/%c "
		    "TLSHIM_EXCLUDE=0.0.0.0/0:%d,0.0.0.0/0:%d-%d "
		    "TLSHIM_BENCH_EXCLUDED=1", lib, tmpdir, i == 0 ? 'a' : 'b', PORT,
		    RING_PLAIN_BASE, RING_PLAIN_BASE + 99);

	server = spawn("/dev/null", "exec ip netns exec %s env %s %s --listen "
	    "0.0.0.0:%d", ns_b, shim_b, self, PORT);
	if (server <= 0 || wait_listening(ns_b, PORT + 1) != 0) {
		fprintf(stderr, "tlshim-bench: the server did not start\n");
		return 1;
	}
	if (o->stunnel && access("/usr/bin/stunnel", X_OK) == 0) {
		char acc[64], con[64];

		snprintf(conf, sizeof(conf), "%s/stunnel-server.conf", tmpdir);
		snprintf(acc, sizeof(acc), "198.18.0.2:%d", STUNNEL_SERVER_PORT);
		snprintf(con, sizeof(con), "127.0.0.1:%d", PORT);
		snprintf(extra, sizeof(extra), "%s/b", tmpdir);
		write_stunnel_conf(conf, extra, 0, acc, con);
		spawn("/dev/null", "exec ip netns exec %s stunnel %s 2>/dev/null",
		    ns_b, conf);
		snprintf(conf, sizeof(conf), "%s/stunnel-client.conf", tmpdir);
		snprintf(acc, sizeof(acc), "127.0.0.1:%d", STUNNEL_CLIENT_PORT);
		snprintf(con, sizeof(con), "198.18.0.2:%d", STUNNEL_SERVER_PORT);
		snprintf(extra, sizeof(extra), "%s/a", tmpdir);
		write_stunnel_conf(conf, extra, 1, acc, con);
		spawn("/dev/null", "exec ip netns exec %s stunnel %s 2>/dev/null",
		    ns_a, conf);
		if (wait_listening(ns_b, STUNNEL_SERVER_PORT) == 0 &&
		    wait_listening(ns_a, STUNNEL_CLIENT_PORT) == 0)
			stunnel_port = STUNNEL_CLIENT_PORT;
		else
			fprintf(stderr, "tlshim-bench: stunnel did not start; no "
			    "comparison rows\n");
	}

	fprintf(stderr, "tlshim-bench: ring allreduce, %d processes\n", o->ranks);
	/* Each rank with its node's credentials: certificates are good only
	 * at their node's address. */
	ring_plain = run_ring(self, shim_a, shim_b, o->ranks, o->ring_bytes,
	    RING_PLAIN_BASE);
	ring_tlshim = run_ring(self, shim_a, shim_b, o->ranks, o->ring_bytes,
	    RING_TLSHIM_BASE);
	if (ring_plain <= 0 || ring_tlshim <= 0)
		fprintf(stderr, "tlshim-bench: the ring allreduce failed\n");

	for (i = 0; i < o->nsizes; i++)
		snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes),
		    "%s%zu", i ? "," : "", o->sizes[i]);
	extra[0] = '\0';
	if (o->json)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    " --json '%s'", o->json);
	if (o->csv)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    " --csv '%s'", o->csv);
	if (o->svg)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    " --svg '%s'", o->svg);
	if (o->link)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		    " --link '%s'", o->link);
	snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
	    " --small-size %zu --pipeline %d --threads '%s' --connectors '%s'",
	    o->small_size, o->pipe_depth, o->threads, o->connectors);
	client = spawn(NULL, "exec ip netns exec %s env %s %s --connect "
	    "198.18.0.2:%d --seconds %g --sizes %s --stunnel-port %d "
	    "--results-from %d,%zu,%.1f,%.1f,0%s", ns_a, shim_a, self, PORT,
	    o->seconds, sizes, stunnel_port, o->ranks, o->ring_bytes, ring_plain,
	    ring_tlshim, extra);
	rc = client > 0 ? wait_child(client) : 1;
	return rc == 0 ? 0 : 1;
}
