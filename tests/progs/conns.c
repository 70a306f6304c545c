/*
 * Many connections in one process: the client opens COUNT connections,
 * echoes one message on each (so every handshake has finished), then
 * reports its resident memory per open connection and the time taken.
 * The server holds them all with one epoll loop.
 *
 * With --churn, the client instead connects, echoes and closes COUNT
 * times in a row, and reports its descriptors and resident memory after
 * the first 1,000 cycles and at the end (nothing may grow).
 *
 *   conns server PORT COUNT       conns client HOST PORT COUNT [--churn]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long
rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The shim's threads of this process, with the CPU each used: a line per
 * thread named tlshim-*, "thread NAME TICKS". */
static void
report_shim_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[300], comm[64] = "", stat[1024];
		unsigned long utime = 0, stime = 0;
		const char *after;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strncmp(comm, "tlshim", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(stat, sizeof(stat), f) != NULL &&
		    (after = strrchr(stat, ')')) != NULL)
			/* Fields 14 and 15, counted after the name. */
			sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			    "%*u %lu %lu", &utime, &stime);
		fclose(f);
		printf("thread %s %lu\n", comm, utime + stime);
	}
	if (d != NULL)
		closedir(d);
}

static int
server(int port, int count)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int lfd = socket(AF_INET, SOCK_STREAM, 0), ep = epoll_create1(0), one = 1;
	int open = 0, seen = 0;

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (void *)&sin, sizeof(sin)) || listen(lfd, 4096))
		return 1;
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (seen < count || open > 0) {
		struct epoll_event got[64];
		int n = epoll_wait(ep, got, 64, 30000), i;

		if (n <= 0)
			return 1;
		for (i = 0; i < n; i++) {
			int fd = got[i].data.fd;
			char buf[256];
			ssize_t r;

			if (fd == lfd) {
				int c = accept(lfd, NULL, NULL);

				if (c < 0)
					continue;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				open++;
				seen++;
				continue;
			}
			r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0) {
				if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r)
					return 1;
			} else if (r == 0 || errno != EAGAIN) {
				close(fd);
				open--;
			}
		}
	}
	report_shim_threads();
	return 0;
}

static int
client(const char *host, int port, int count)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int *fds = calloc((size_t)count, sizeof(int)), i;
	long before;
	double t0, took;

	inet_pton(AF_INET, host, &sin.sin_addr);
	before = rss_kib();
	t0 = now();
	for (i = 0; i < count; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fds[i], (void *)&sin, sizeof(sin)) != 0) {
			fprintf(stderr, "conns: connect %d: %s\n", i, strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < count; i++) {
		char got[8];

		if (send(fds[i], "ping!", 5, MSG_NOSIGNAL) != 5 ||
		    recv(fds[i], got, 5, MSG_WAITALL) != 5 ||
		    memcmp(got, "ping!", 5) != 0) {
			fprintf(stderr, "conns: echo on connection %d failed\n", i);
			return 1;
		}
	}
	took = now() - t0;
	printf("conns: %d connections open and echoing in %.2f s; %.1f KiB "
	    "resident per connection\n", count, took,
	    (double)(rss_kib() - before) / count);
	for (i = 0; i < count; i++)
		close(fds[i]);
	return 0;
}

static int
open_fds(void)
{
	char path[64];
	int fd, n = 0;

	for (fd = 0; fd < 65536; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (access(path, F_OK) == 0)
			n++;
	}
	return n;
}

static int
churn(const char *host, int port, int count)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	long rss_early = 0;
	int fds_early = 0, i;
	double t0 = now();

	inet_pton(AF_INET, host, &sin.sin_addr);
	for (i = 1; i <= count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char got[8];

		if (connect(fd, (void *)&sin, sizeof(sin)) != 0 ||
		    send(fd, "ping!", 5, MSG_NOSIGNAL) != 5 ||
		    recv(fd, got, 5, MSG_WAITALL) != 5) {
			fprintf(stderr, "conns: cycle %d failed: %s\n", i,
			    strerror(errno));
			return 1;
		}
		close(fd);
		if (i == 1000) {
			rss_early = rss_kib();
			fds_early = open_fds();
		}
	}
	printf("conns: %d connect/echo/close cycles in %.1f s; after 1,000: %d "
	    "descriptors, %ld KiB; at the end: %d descriptors, %ld KiB\n", count,
	    now() - t0, fds_early, rss_early, open_fds(), rss_kib());
	/* Under a sanitizer freed memory waits in its quarantine: RSS says
	 * nothing there (CONNS_IGNORE_RSS). */
	if (open_fds() > fds_early || (getenv("CONNS_IGNORE_RSS") == NULL &&
	    rss_kib() > rss_early + 4096)) {
		fprintf(stderr, "conns: descriptors or memory grew\n");
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	raise_fd_limit();
	if (argc == 6 && strcmp(argv[1], "client") == 0 &&
	    strcmp(argv[5], "--churn") == 0)
		return churn(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 4 && strcmp(argv[1], "server") == 0)
		return server(atoi(argv[2]), atoi(argv[3]));
	if (argc == 5 && strcmp(argv[1], "client") == 0)
		return client(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: conns server PORT COUNT | client HOST PORT COUNT\n");
	return 2;
}
