#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "config.h"
#include "decide.h"
#include "fdclass.h"
#include "identity.h"
#include "log.h"
#include "real.h"

enum fdclass {
	FDCLASS_UNKNOWN = 0,
	FDCLASS_PLAIN,
	FDCLASS_UNKEYED,
};

/* Two levels, as in the fd table: descriptors up to 2^24. */
#define FDCLASS_CHUNK 4096
#define FDCLASS_CHUNKS 4096

typedef _Atomic uint8_t fdclass_slot;

static _Atomic(fdclass_slot *) fdclass_chunks[FDCLASS_CHUNKS];

static fdclass_slot *
fdclass_slot_of(int fd, bool create)
{
	unsigned idx = (unsigned)fd / FDCLASS_CHUNK;
	fdclass_slot *chunk, *fresh;

	if (fd < 0 || idx >= FDCLASS_CHUNKS)
		return NULL;
	chunk = atomic_load_explicit(&fdclass_chunks[idx], memory_order_acquire);
	if (chunk == NULL && create) {
		if ((fresh = calloc(FDCLASS_CHUNK, sizeof(*fresh))) == NULL)
			return NULL;
		if (atomic_compare_exchange_strong(&fdclass_chunks[idx], &chunk,
		    fresh))
			chunk = fresh;
		else
			free(fresh);	/* another thread's won */
	}
	return chunk == NULL ? NULL : &chunk[(unsigned)fd % FDCLASS_CHUNK];
}

static void
fdclass_store(int fd, uint8_t class)
{
	fdclass_slot *slot = fdclass_slot_of(fd, class != FDCLASS_UNKNOWN);

	if (slot != NULL)
		atomic_store_explicit(slot, (uint8_t)class, memory_order_relaxed);
}

/* What ${fd} is now; FDCLASS_UNKNOWN when it cannot be told yet (a TCP
 * socket not connected, a closed descriptor). */
static enum fdclass
fdclass_classify(int fd, struct sockaddr_storage *peer)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(int);
	int type = 0, proto = 0;

	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return errno == ENOTSOCK ? FDCLASS_PLAIN : FDCLASS_UNKNOWN;
	len = sizeof(proto);
	if (type != SOCK_STREAM || real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL,
	    &proto, &len) != 0 || proto != IPPROTO_TCP)
		return FDCLASS_PLAIN;
	len = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
		return FDCLASS_UNKNOWN;
	len = sizeof(*peer);
	if (real.getpeername(fd, (struct sockaddr *)peer, &len) != 0)
		return FDCLASS_UNKNOWN;
	/* Which end is the server is not known: fail closed if the policy
	 * protects the connection as either's. */
	if (decide_either((struct sockaddr *)&local, (struct sockaddr *)peer))
		return FDCLASS_UNKEYED;
	return FDCLASS_PLAIN;
}

bool
fdclass_unkeyed(int fd)
{
	struct sockaddr_storage peer;
	fdclass_slot *slot;
	enum fdclass was, now;
	char where[64];

	if (!config.enabled || shim_internal_thread)
		return false;
	slot = fdclass_slot_of(fd, false);
	was = slot != NULL ? atomic_load_explicit(slot, memory_order_relaxed) :
	    FDCLASS_UNKNOWN;
	if (was == FDCLASS_PLAIN)
		return false;
	/* Unkeyed is checked again on every call (the calls fail anyway):
	 * a number closed behind the shim's back never stays refused. */
	now = fdclass_classify(fd, &peer);
	if (now != was)
		fdclass_store(fd, now);
	if (now != FDCLASS_UNKEYED)
		return false;
	if (was != FDCLASS_UNKEYED) {
		identity_format_address((struct sockaddr *)&peer, where,
		    sizeof(where));
		log_msg_limited(LOG_LEVEL_ERROR, "fd %d: the connection with %s must be "
		    "protected, but this process did not key it (inherited "
		    "across exec, or received from another process): its I/O "
		    "fails rather than go out in plaintext", fd, where);
	}
	return true;
}

void
fdclass_set_plain(int fd)
{
	fdclass_store(fd, FDCLASS_PLAIN);
}

void
fdclass_copy(int from, int to)
{
	fdclass_slot *slot = fdclass_slot_of(from, false);

	fdclass_store(to, slot != NULL ? atomic_load_explicit(slot,
	    memory_order_relaxed) : FDCLASS_UNKNOWN);
}

void
fdclass_forget(int fd)
{
	fdclass_slot *slot = fdclass_slot_of(fd, false);

	if (slot != NULL)
		atomic_store_explicit(slot, FDCLASS_UNKNOWN, memory_order_relaxed);
}

void
fdclass_forget_range(unsigned int first, unsigned int last)
{
	unsigned idx, i;

	for (idx = first / FDCLASS_CHUNK; idx < FDCLASS_CHUNKS &&
	    idx <= last / FDCLASS_CHUNK; idx++) {
		fdclass_slot *chunk = atomic_load(&fdclass_chunks[idx]);

		if (chunk == NULL)
			continue;
		for (i = 0; i < FDCLASS_CHUNK; i++) {
			unsigned fd = idx * FDCLASS_CHUNK + i;

			if (fd >= first && fd <= last)
				atomic_store_explicit(&chunk[i], FDCLASS_UNKNOWN,
				    memory_order_relaxed);
		}
	}
}
