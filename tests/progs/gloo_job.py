"""A PyTorch job over gloo for the end-to-end tests and the demo.

Collectives (all_reduce, broadcast, all_gather, all_to_all) and send/recv
on tensors from 1 KiB to 64 MiB are checked against their exact expected
values, then a small DistributedDataParallel model trains a few
steps and every rank checks that all ranks hold identical parameters.
Prints one JSON line per rank with what it measured.

usage: gloo_job.py RANK WORLD MASTER_ADDR MASTER_PORT [--quick]
"""
import json
import sys
import time

import torch
import torch.distributed as dist

SIZES = [1 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20]  # bytes
# Known plaintext that a wire capture must not contain.
MARKER = b"TLSHIM-PLAINTEXT-MARKER-TENSOR--"


def check_collectives(rank, world, sizes):
    moved = 0
    start = time.monotonic()
    # A tensor whose bytes are known text, from rank 0 to everyone.
    marked = torch.frombuffer(bytearray(MARKER * 8192), dtype=torch.uint8)
    t = marked.clone() if rank == 0 else torch.zeros_like(marked)
    dist.broadcast(t, src=0)
    if not torch.equal(t, marked):
        raise SystemExit(f"rank {rank}: broadcast of the marker tensor is wrong")
    for size in sizes:
        n = size // 4
        # all_reduce: sum of (rank + 1) * pattern over all ranks.
        pattern = torch.arange(n, dtype=torch.float32) % 1000
        t = pattern * (rank + 1)
        dist.all_reduce(t)
        expect = pattern * (world * (world + 1) / 2)
        if not torch.equal(t, expect):
            raise SystemExit(f"rank {rank}: all_reduce of {size} bytes is wrong")
        # broadcast from the last rank.
        t = torch.full((n,), float(rank), dtype=torch.float32)
        dist.broadcast(t, src=world - 1)
        if not torch.all(t == float(world - 1)):
            raise SystemExit(f"rank {rank}: broadcast of {size} bytes is wrong")
        # all_gather: every rank contributes its own constant.
        parts = [torch.empty(n // world, dtype=torch.float32) for _ in range(world)]
        dist.all_gather(parts, torch.full((n // world,), float(rank * 7)))
        for r, p in enumerate(parts):
            if not torch.all(p == float(r * 7)):
                raise SystemExit(f"rank {rank}: all_gather of {size} bytes is wrong")
        # all_to_all: rank r sends block j (all 100 * r + j) to rank j.
        block = max(n // world, 1)
        out = torch.cat([torch.full((block,), float(100 * rank + j))
                         for j in range(world)])
        back = torch.empty(block * world)
        dist.all_to_all_single(back, out)
        for r in range(world):
            if not torch.all(back[r * block:(r + 1) * block] ==
                             float(100 * r + rank)):
                raise SystemExit(f"rank {rank}: all_to_all of {size} bytes is wrong")
        # send/recv around the ring: each rank passes its pattern on.
        mine = pattern + rank
        got = torch.empty(n)
        right, left = (rank + 1) % world, (rank - 1) % world
        if rank % 2 == 0:
            dist.send(mine, right)
            dist.recv(got, left)
        else:
            dist.recv(got, left)
            dist.send(mine, right)
        if not torch.equal(got, pattern + left):
            raise SystemExit(f"rank {rank}: send/recv of {size} bytes is wrong")
        moved += 5 * size
    return moved, time.monotonic() - start


def all_reduce_throughput(size, rounds):
    t = torch.ones(size // 4, dtype=torch.float32)
    dist.all_reduce(t)  # warm up the pairs
    start = time.monotonic()
    for _ in range(rounds):
        dist.all_reduce(t)
    took = time.monotonic() - start
    return size * rounds / took / 1e6  # MB/s of tensor per rank


def train_ddp(rank, world, steps):
    torch.manual_seed(1234)  # same initial weights everywhere
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 1))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    torch.manual_seed(100 + rank)  # different data per rank
    loss = None
    for _ in range(steps):
        x = torch.randn(32, 64)
        y = x.sum(dim=1, keepdim=True)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    for r, g in enumerate(gathered):
        if not torch.equal(g, flat):
            raise SystemExit(f"rank {rank}: parameters differ from rank {r}")
    return float(loss)


def main():
    rank, world = int(sys.argv[1]), int(sys.argv[2])
    addr, port = sys.argv[3], int(sys.argv[4])
    quick = "--quick" in sys.argv
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}",
                            rank=rank, world_size=world,
                            timeout=__import__("datetime").timedelta(seconds=60))
    sizes = SIZES[:4] if quick else SIZES
    moved, took = check_collectives(rank, world, sizes)
    mbps = all_reduce_throughput(16 << 20, 3 if quick else 10)
    loss = train_ddp(rank, world, 5)
    dist.barrier()
    print(json.dumps({"rank": rank, "world": world, "collectives_ok": True,
                      "bytes_checked": moved, "seconds": round(took, 3),
                      "allreduce_16MiB_MBps": round(mbps, 1),
                      "ddp_loss": round(loss, 4), "ddp_params_identical": True}),
          flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
