"""A short data-parallel training job for torchrun, over gloo.

Each rank trains the same model on its own synthetic batches; DDP
all-reduces the gradients every step. At the end every rank checks that all
ranks hold identical parameters, and rank 0 prints one JSON line. The job
also all-gathers a small text label per rank: known plaintext that a wire
capture should never show when tlshim protects the job.

    torchrun --nnodes 2 --nproc_per_node 1 --node_rank N \\
        --master_addr ADDR --master_port PORT train_ddp.py [--steps 40]
"""
import argparse
import hashlib
import json
import os
import time
import urllib.request

import torch
import torch.distributed as dist

LABEL = "TLSHIM-DEMO-PLAINTEXT-LABEL"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--dataset-url", help="download this first (a "
                        "service outside the job, e.g. an object store)")
    args = parser.parse_args()

    dataset = {}
    if args.dataset_url:
        with urllib.request.urlopen(args.dataset_url, timeout=30) as r:
            body = r.read()
        dataset = {"dataset_bytes": len(body),
                   "dataset_sha256": hashlib.sha256(body).hexdigest()[:16]}

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    label = torch.frombuffer(bytearray(f"{LABEL}-rank-{rank:04d}".encode() * 64),
                             dtype=torch.uint8)
    labels = [torch.empty_like(label) for _ in range(world)]
    dist.all_gather(labels, label)

    torch.manual_seed(0)  # identical initial weights on every rank
    model = torch.nn.Sequential(
        torch.nn.Linear(64, args.width), torch.nn.ReLU(),
        torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
        torch.nn.Linear(args.width, 1))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1000 + rank)  # own data per rank

    dist.barrier()
    start = time.monotonic()
    for _ in range(args.steps):
        x = torch.randn(64, 64, generator=gen)
        y = x[:, :8].sum(dim=1, keepdim=True)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        loss.backward()
        opt.step()
    dist.barrier()
    took = time.monotonic() - start

    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    everyone = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(everyone, flat)
    identical = all(torch.equal(flat, other) for other in everyone)
    params = flat.numel()
    if rank == 0:
        print(json.dumps({
            "world": world, "steps": args.steps, "parameters": params,
            "final_loss": round(float(loss), 4),
            "seconds": round(took, 3),
            "gradient_MB_per_step": round(params * 4 / 1e6, 1),
            "identical_parameters": identical, **dataset}), flush=True)
    dist.destroy_process_group()
    if not identical:
        raise SystemExit("parameters differ between ranks")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
