"""A Ray job across two nodes (tests/stacks/03-ray.sh): tasks and an actor
on node b move objects of several MiB both ways, every byte checked, and
one object carries a known marker (which must never cross in clear).
Prints one JSON line; exits 0 when everything arrived intact.

  ray_job.py HEAD_ADDRESS MARKER
"""
import hashlib
import json
import sys

import numpy as np
import ray

MIB = 1 << 20
ray.init(address=sys.argv[1])
marker = sys.argv[2].encode()


@ray.remote(resources={"node_b": 0.1})
def produce(seed, size):
    """On node b: an object of ${size} bytes, for the driver on node a."""
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


@ray.remote(resources={"node_b": 0.1})
def digest(arr):
    """On node b: the digest of an object put on node a."""
    return hashlib.sha256(arr.tobytes()).hexdigest()


@ray.remote(resources={"node_b": 0.1})
def labelled(n):
    """On node b: the marker, repeated, as a plain bytes object."""
    return marker * n


@ray.remote(resources={"node_b": 0.1})
class Accumulator:
    def __init__(self):
        self.total = np.zeros(MIB, dtype=np.float64)

    def add(self, arr):
        self.total += arr
        return float(self.total.sum())


out = {}
got = ray.get([produce.remote(i, 4 * MIB) for i in range(8)])
out["b_to_a"] = all(
    np.array_equal(g, np.random.default_rng(i).integers(0, 256, 4 * MIB,
                                                        dtype=np.uint8))
    for i, g in enumerate(got))
arrays = [np.random.default_rng(100 + i).integers(0, 256, 6 * MIB,
                                                   dtype=np.uint8)
          for i in range(4)]
out["a_to_b"] = ray.get([digest.remote(ray.put(a)) for a in arrays]) == [
    hashlib.sha256(a.tobytes()).hexdigest() for a in arrays]
out["marker"] = ray.get(labelled.remote(1000)) == marker * 1000
acc = Accumulator.remote()
for k in range(5):
    total = ray.get(acc.add.remote(np.full(MIB, k + 1.0)))
out["actor"] = total == float(MIB * 15)
out["nodes"] = sorted(n["NodeManagerAddress"] for n in ray.nodes()
                      if n["Alive"])
out["ray"] = ray.__version__
print(json.dumps(out))
sys.exit(0 if all(out[k] for k in ("b_to_a", "a_to_b", "marker", "actor"))
         else 1)
