"""Count where secrets sit in a live process's memory.

  memscan.py PID NAME=HEX ...

Reads every readable mapping of process PID through /proc/PID/mem (root)
and prints "NAME COUNT" for each byte string given in hex: how many times
it occurs. The tests give it key material that must, or must not, still
be in memory.
"""
import re
import sys


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
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for start, end in regions(pid):
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            for name, needle in needles.items():
                counts[name] += data.count(needle)
    for name, count in counts.items():
        print(name, count)


main()
