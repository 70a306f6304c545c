#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "conn.h"
#include "fdtab.h"

/* Two levels of 4096 entries cover descriptors up to 2^24 without a
 * table as large as the process's limit. */
#define FDTAB_CHUNK 4096
#define FDTAB_CHUNKS 4096

typedef _Atomic(struct conn *) fdtab_slot;

static _Atomic(fdtab_slot *) fdtab_chunks[FDTAB_CHUNKS];
/* Serialises changes and reference-taking lookups against close. */
static pthread_mutex_t fdtab_lock = PTHREAD_MUTEX_INITIALIZER;

static fdtab_slot *
fdtab_slot_of(int fd, int create)
{
	fdtab_slot *chunk;
	unsigned idx = (unsigned)fd / FDTAB_CHUNK;

	if (fd < 0 || idx >= FDTAB_CHUNKS)
		return NULL;
	chunk = atomic_load_explicit(&fdtab_chunks[idx], memory_order_acquire);
	if (chunk == NULL && create) {
		chunk = calloc(FDTAB_CHUNK, sizeof(*chunk));
		if (chunk == NULL)
			return NULL;
		atomic_store_explicit(&fdtab_chunks[idx], chunk,
		    memory_order_release);
	}
	return chunk == NULL ? NULL : &chunk[(unsigned)fd % FDTAB_CHUNK];
}

int
fdtab_has(int fd)
{
	fdtab_slot *slot = fdtab_slot_of(fd, 0);

	return slot != NULL &&
	    atomic_load_explicit(slot, memory_order_relaxed) != NULL;
}

struct conn *
fdtab_get(int fd)
{
	fdtab_slot *slot = fdtab_slot_of(fd, 0);
	struct conn *c;

	if (slot == NULL || atomic_load_explicit(slot, memory_order_relaxed) ==
	    NULL)
		return NULL;
	pthread_mutex_lock(&fdtab_lock);
	c = atomic_load(slot);
	if (c != NULL)
		conn_ref(c);
	pthread_mutex_unlock(&fdtab_lock);
	return c;
}

int
fdtab_set(int fd, struct conn *conn)
{
	fdtab_slot *slot;
	struct conn *old;

	pthread_mutex_lock(&fdtab_lock);
	if ((slot = fdtab_slot_of(fd, 1)) == NULL) {
		pthread_mutex_unlock(&fdtab_lock);
		return -ENOMEM;
	}
	conn_ref(conn);
	old = atomic_exchange(slot, conn);
	pthread_mutex_unlock(&fdtab_lock);
	conn_unref(old);
	return 0;
}

struct conn *
fdtab_take(int fd)
{
	fdtab_slot *slot = fdtab_slot_of(fd, 0);
	struct conn *c;

	if (slot == NULL)
		return NULL;
	pthread_mutex_lock(&fdtab_lock);
	c = atomic_exchange(slot, NULL);
	pthread_mutex_unlock(&fdtab_lock);
	return c;
}

void
fdtab_each(void (*fn)(int fd, struct conn *conn, void *arg), void *arg)
{
	unsigned i, j;

	for (i = 0; i < FDTAB_CHUNKS; i++) {
		fdtab_slot *chunk = atomic_load(&fdtab_chunks[i]);

		if (chunk == NULL)
			continue;
		for (j = 0; j < FDTAB_CHUNK; j++) {
			struct conn *c;

			if (atomic_load_explicit(&chunk[j], memory_order_relaxed) ==
			    NULL)
				continue;
			if ((c = fdtab_get((int)(i * FDTAB_CHUNK + j))) == NULL)
				continue;
			fn((int)(i * FDTAB_CHUNK + j), c, arg);
			conn_unref(c);
		}
	}
}
