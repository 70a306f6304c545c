"""Open MPI collectives through mpi4py, checked against exact values.

Run under mpirun; every rank prints one line, and exits non-zero on any
wrong result. With a URL argument every rank first downloads it (a data
service outside the job) and reports its size.
"""
import sys
import urllib.request

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
fetched = ""
if len(sys.argv) > 1:
    with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
        fetched = f", downloaded {len(r.read())} bytes"

for n in (1, 1000, 256 * 1024, 2 * 1024 * 1024):
    # Allreduce: sum of (rank + 1) * arange.
    send = np.arange(n, dtype=np.float64) * (rank + 1)
    recv = np.empty_like(send)
    comm.Allreduce(send, recv, op=MPI.SUM)
    if not np.array_equal(recv, np.arange(n, dtype=np.float64) * (size * (size + 1) // 2)):
        sys.exit(f"rank {rank}: Allreduce of {n} doubles is wrong")
    # Bcast from the last rank.
    buf = np.full(n, rank, dtype=np.int64)
    comm.Bcast(buf, root=size - 1)
    if not np.all(buf == size - 1):
        sys.exit(f"rank {rank}: Bcast of {n} int64 is wrong")
    # Alltoall: block j from rank i holds i * 1000 + j.
    per = max(1, n // size)
    send = np.concatenate([np.full(per, rank * 1000 + j, dtype=np.int32)
                           for j in range(size)])
    recv = np.empty_like(send)
    comm.Alltoall(send, recv)
    expect = np.concatenate([np.full(per, i * 1000 + rank, dtype=np.int32)
                             for i in range(size)])
    if not np.array_equal(recv, expect):
        sys.exit(f"rank {rank}: Alltoall of {n} int32 is wrong")

comm.Barrier()
print(f"mpi rank {rank} of {size}: Allreduce, Bcast and Alltoall correct"
      f"{fetched}", flush=True)
