"""torch.distributed.rpc between two ranks (TensorPipe over TCP): each rank
calls the other with tensors of 4 MiB (rpc_sync, rpc_async, and a remote
object), checks every result, and prints one JSON line.

usage: rpc_job.py RANK MASTER_ADDR MASTER_PORT
"""
import json
import os
import sys

import torch
import torch.distributed.rpc as rpc


def scaled(t, k):
    return t * k


class Counter:
    def __init__(self):
        self.total = torch.zeros(1 << 20)

    def add(self, t):
        self.total += t
        return self.total.clone()


def main():
    rank, addr, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = addr, port
    # TCP between the nodes only: no shared memory or other channels.
    opts = rpc.TensorPipeRpcBackendOptions(_transports=["uv"],
                                           _channels=["basic"])
    rpc.init_rpc(f"worker{rank}", rank=rank, world_size=2,
                 rpc_backend_options=opts)
    peer = f"worker{1 - rank}"
    t = torch.arange(1 << 20, dtype=torch.float32) + rank
    ok = torch.equal(rpc.rpc_sync(peer, scaled, args=(t, 3)), t * 3)
    futs = [rpc.rpc_async(peer, scaled, args=(t, k)) for k in range(4)]
    ok = ok and all(torch.equal(f.wait(), t * k) for k, f in enumerate(futs))
    counter = rpc.remote(peer, Counter)
    for _ in range(3):
        last = counter.rpc_sync().add(torch.ones(1 << 20))
    ok = ok and torch.equal(last, torch.full((1 << 20,), 3.0))
    rpc.shutdown()
    print(json.dumps({"rank": rank, "rpc_ok": bool(ok),
                      "torch": torch.__version__}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
