/*
 * Out of memory inside a protected program: with the address space capped
 * at what the process already has, new protected connections must fail
 * with an errno (never crash or hang the process, never fall back to
 * plaintext), and once memory is back, new connections work again.
 *
 *   oom HOST PORT        (an echo server listens there)
 *
 * Prints one line; exits 0 when the process survived, at least one
 * connection failed for lack of memory, and a connection afterwards
 * echoed correctly.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ATTEMPTS 20

static struct sockaddr_in peer;

/* Connect, echo ${msg}, close: 0, or the errno of the first failure. */
static int
echo_once(const char *msg)
{
	struct timeval tv = { .tv_sec = 5 };
	char back[64];
	size_t len = strlen(msg), got = 0;
	int fd, err = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0 ||
	    send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		err = errno;
		goto out;
	}
	while (got < len) {
		ssize_t n = recv(fd, back + got, len - got, 0);

		if (n <= 0) {
			err = n == 0 ? ECONNRESET : errno;
			goto out;
		}
		got += (size_t)n;
	}
	if (memcmp(back, msg, len) != 0)
		err = EBADMSG;	/* wrong bytes: the worst outcome */
out:
	close(fd);
	return err;
}

static rlim_t
address_space_now(void)
{
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%ld", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

int
main(int argc, char **argv)
{
	struct rlimit tight, loose = { RLIM_INFINITY, RLIM_INFINITY };
	int i, rc, failed = 0, wrong = 0, errs[ATTEMPTS];
	char line[512];
	size_t off = 0;

	if (argc != 3)
		return 2;
	peer.sin_family = AF_INET;
	peer.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &peer.sin_addr);
	if ((rc = echo_once("before")) != 0) {
		printf("oom: the first connection failed: %s\n", strerror(rc));
		return 1;
	}
	fflush(stdout);
	/* No new mappings from here: only memory the process already has. */
	tight.rlim_cur = address_space_now();
	tight.rlim_max = RLIM_INFINITY;
	if (setrlimit(RLIMIT_AS, &tight) != 0)
		return 2;
	for (i = 0; i < ATTEMPTS; i++) {
		errs[i] = echo_once("during");
		failed += errs[i] != 0;
		wrong += errs[i] == EBADMSG;
	}
	setrlimit(RLIMIT_AS, &loose);
	rc = echo_once("after");
	off += (size_t)snprintf(line + off, sizeof(line) - off,
	    "oom: %d of %d connections failed while memory was short (", failed,
	    ATTEMPTS);
	for (i = 0; i < ATTEMPTS && off < sizeof(line) - 32; i++)
		if (errs[i] != 0)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
			    "%s%s", off && line[off - 1] != '(' ? "," : "",
			    strerrorname_np(errs[i]));
	snprintf(line + off, sizeof(line) - off, "); afterwards: %s",
	    rc == 0 ? "echoed" : strerror(rc));
	printf("%s\n", line);
	return failed > 0 && wrong == 0 && rc == 0 ? 0 : 1;
}
