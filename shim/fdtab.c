#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "conn.h"
#include "fdtab.h"

/* Two levels of 4096 entries cover descriptors up to 2^24 without a
 * table as large as the process's limit. */
#define FDTAB_CHUNK 4096
#define FDTAB_CHUNKS 4096

/*
 * A slot holds the connection's address, its lowest bit a lock. Taking a
 * reference must not race with the slot's last reference being dropped
 * (close on another thread), so a lookup locks its slot for the two
 * instructions it takes to load and reference; threads working on
 * different descriptors never wait for each other: there is no
 * process-wide lock on the data path.
 */
#define SLOT_LOCKED ((uintptr_t)1)

typedef _Atomic(uintptr_t) fdtab_slot;

static _Atomic(fdtab_slot *) fdtab_chunks[FDTAB_CHUNKS];
/* Serialises creating chunks (rare: the first descriptor of a range). */
static pthread_mutex_t chunks_lock = PTHREAD_MUTEX_INITIALIZER;

static fdtab_slot *
fdtab_slot_of(int fd, int create)
{
	fdtab_slot *chunk;
	unsigned idx = (unsigned)fd / FDTAB_CHUNK;

	if (fd < 0 || idx >= FDTAB_CHUNKS)
		return NULL;
	chunk = atomic_load_explicit(&fdtab_chunks[idx], memory_order_acquire);
	if (chunk == NULL && create) {
		pthread_mutex_lock(&chunks_lock);
		chunk = atomic_load(&fdtab_chunks[idx]);
		if (chunk == NULL && (chunk = calloc(FDTAB_CHUNK,
		    sizeof(*chunk))) != NULL)
			atomic_store_explicit(&fdtab_chunks[idx], chunk,
			    memory_order_release);
		pthread_mutex_unlock(&chunks_lock);
	}
	return chunk == NULL ? NULL : &chunk[(unsigned)fd % FDTAB_CHUNK];
}

/* Lock ${slot}; returns what it holds. The holder keeps it for a few
 * instructions, so waiting spins, and yields if the holder was
 * descheduled. */
static uintptr_t
slot_lock(fdtab_slot *slot)
{
	unsigned spins = 0;

	for (;;) {
		uintptr_t v = atomic_load_explicit(slot, memory_order_relaxed);

		if (!(v & SLOT_LOCKED) && atomic_compare_exchange_weak_explicit(
		    slot, &v, v | SLOT_LOCKED, memory_order_acquire,
		    memory_order_relaxed))
			return v;
		if (++spins % 64 == 0)
			sched_yield();
	}
}

static void
slot_unlock(fdtab_slot *slot, struct conn *now)
{
	atomic_store_explicit(slot, (uintptr_t)now, memory_order_release);
}

int
fdtab_has(int fd)
{
	fdtab_slot *slot = fdtab_slot_of(fd, 0);

	return slot != NULL &&
	    atomic_load_explicit(slot, memory_order_relaxed) != 0;
}

bool
fdtab_holds(int fd, const struct conn *conn)
{
	fdtab_slot *slot = fdtab_slot_of(fd, 0);

	return slot != NULL && (atomic_load_explicit(slot, memory_order_acquire) &
	    ~SLOT_LOCKED) == (uintptr_t)conn;
}

struct conn *
fdtab_get(int fd)
{
	fdtab_slot *slot = fdtab_slot_of(fd, 0);
	struct conn *c;

	if (slot == NULL || atomic_load_explicit(slot, memory_order_relaxed) == 0)
		return NULL;
	c = (struct conn *)slot_lock(slot);
	if (c != NULL)
		conn_ref(c);
	slot_unlock(slot, c);
	return c;
}

int
fdtab_set(int fd, struct conn *conn)
{
	fdtab_slot *slot;
	struct conn *old;

	if ((slot = fdtab_slot_of(fd, 1)) == NULL)
		return -ENOMEM;
	conn_ref(conn);
	old = (struct conn *)slot_lock(slot);
	slot_unlock(slot, conn);
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
	c = (struct conn *)slot_lock(slot);
	slot_unlock(slot, NULL);
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
			    0)
				continue;
			if ((c = fdtab_get((int)(i * FDTAB_CHUNK + j))) == NULL)
				continue;
			fn((int)(i * FDTAB_CHUNK + j), c, arg);
			conn_unref(c);
		}
	}
}

void
fdtab_fork_child(void)
{
	unsigned i, j;

	/* A thread of the parent may have held a slot or the chunk lock
	 * at the fork; it does not exist here to let go. */
	pthread_mutex_init(&chunks_lock, NULL);
	for (i = 0; i < FDTAB_CHUNKS; i++) {
		fdtab_slot *chunk = atomic_load(&fdtab_chunks[i]);

		if (chunk == NULL)
			continue;
		for (j = 0; j < FDTAB_CHUNK; j++)
			atomic_fetch_and(&chunk[j], ~SLOT_LOCKED);
	}
}
