"""Count where secrets sit in a live process's memory.

  memscan.py PID NAME=HEX ...

Reads every readable mapping of process PID through /proc/PID/mem (root)
and prints "NAME COUNT" for each byte string given in hex: how many times
it occurs. The tests give it key material that must, or must not, still
be in memory.
"""
import re
import sys

WINDOW = 64 << 20


def regions(pid):
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m and m.group(3)[0] == "r" and "[vvar]" not in line:
                yield int(m.group(1), 16), int(m.group(2), 16)


def main():
    pid = int(sys.argv[1])
    needles = {}
    for arg in sys.argv[2:]:
        name, hexbytes = arg.split("=", 1)
        needles[name] = bytes.fromhex(hexbytes)
    counts = dict.fromkeys(needles, 0)
    overlap = max(len(n) for n in needles.values()) - 1
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for start, end in regions(pid):
            # Windows that overlap by a needle's length, so that nothing
            # straddling a window edge is missed or counted twice.
            pos = start
            while pos < end:
                size = min(WINDOW, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(size + min(overlap, end - pos - size))
                except (OSError, ValueError, OverflowError):
                    break
                for name, needle in needles.items():
                    found = data.count(needle)
                    # Matches starting in the overlap belong to the next
                    # window.
                    found -= data[size:].count(needle) if len(data) > size else 0
                    counts[name] += found
                pos += size
    for name, count in counts.items():
        print(name, count)


main()
