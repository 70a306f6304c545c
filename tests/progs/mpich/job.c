/* An MPICH job for tests/e2e/37-mpich.sh: a 16 MiB allreduce of doubles
 * and a 16 MiB send/recv of a marked buffer (large enough for UCX's TCP
 * transport to use its PUT zero-copy protocol), both checked exactly.
 * Built by the test with mpicc.mpich (not by the Makefile: it needs
 * MPICH's headers). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BYTES (16u << 20)

static int
allreduce_exact(int rank, int size)
{
	size_t n = BYTES / sizeof(double), i;
	double *in = malloc(BYTES), *out = malloc(BYTES);
	double want = size * (size + 1) / 2.0;
	int ok = in != NULL && out != NULL;

	for (i = 0; ok && i < n; i++)
		in[i] = rank + 1;
	if (ok)
		MPI_Allreduce(in, out, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
	for (i = 0; ok && i < n; i++)
		ok = out[i] == want;
	free(in);
	free(out);
	return ok;
}

/* Rank 0 sends lines carrying ${marker}; rank 1 checks every byte. */
static int
send_recv_exact(int rank, const char *marker)
{
	char *buf = malloc(BYTES), *want = malloc(BYTES);
	size_t len = strlen(marker), i;
	int ok = buf != NULL && want != NULL;

	for (i = 0; ok && i < BYTES; i++)
		want[i] = i % 64 == 63 ? '\n' : marker[i % 64 % len];
	if (ok && rank == 0)
		MPI_Send(want, BYTES, MPI_BYTE, 1, 9, MPI_COMM_WORLD);
	else if (ok && rank == 1) {
		MPI_Recv(buf, BYTES, MPI_BYTE, 0, 9, MPI_COMM_WORLD,
		    MPI_STATUS_IGNORE);
		ok = memcmp(buf, want, BYTES) == 0;
	}
	free(buf);
	free(want);
	return ok;
}

int
main(int argc, char **argv)
{
	int rank, size, ok;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	ok = allreduce_exact(rank, size) &&
	    send_recv_exact(rank, argc > 1 ? argv[1] : "marker");
	printf("mpich rank %d of %d: %s\n", rank, size, ok ?
	    "allreduce and 16 MiB send/recv correct" : "WRONG RESULT");
	MPI_Finalize();
	return ok ? 0 : 1;
}
