"""
Profile a server under the closed-loop load of ``bench/run`` with py-spy.

    .venv/bin/python bench/profile.py [--server ocppd] [--action Heartbeat] [--seconds 5]

Prints the functions with the most samples (self and inclusive) and writes
the raw stacks (``py-spy record --format raw``) and a flame graph SVG next to
them for a closer look. py-spy samples every thread of the process: the
store's thread pool shows up beside the reactor thread.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from measure import add_load_arguments, load_from_arguments
from servers import BIN, Server, prepare_ocppd

# Leaf frames of threads waiting for work, not using the CPU.
_IDLE = (
    "Condition.wait",
    "Queue.get",
    "EPollReactor.doPoll (twisted/internet/epollreactor.py:227)",
)


def summarize(raw_path: str, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            n = int(count)
            frames = stack.split(";")
            if any(idle in frames[-1] for idle in _IDLE):
                continue
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    print(f"{total} samples")
    print("\nself time:")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("\ninclusive time:")
    for frame, n in inclusive.most_common(top * 2):
        print(f"  {100 * n / total:5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, seconds=5.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="sample without pausing the server (less distortion, rarely a torn stack)",
    )
    parser.add_argument("--out", default=tempfile.gettempdir())
    args = parser.parse_args()
    template = prepare_ocppd(args.connections, 0) if args.server.startswith("ocppd") else None
    raw = os.path.join(args.out, f"profile-{args.server}-{args.action}.txt")
    svg = os.path.join(args.out, f"profile-{args.server}-{args.action}.svg")
    with Server(args.server, template) as server:

        def record() -> None:
            for fmt, path in (("raw", raw), ("flamegraph", svg)):
                subprocess.run(
                    [
                        os.path.join(BIN, "py-spy"),
                        "record",
                        "--pid",
                        str(server.pid),
                        "--duration",
                        str(int(args.seconds // 2)),
                        "--rate",
                        str(args.rate),
                        *(["--nonblocking"] if args.nonblocking else []),
                        "--format",
                        fmt,
                        "--output",
                        path,
                    ],
                    check=True,
                    capture_output=True,
                )

        profiler = threading.Thread(target=record)
        result = load_from_arguments(server, args, profiler.start)
        profiler.join()
    if template is not None:
        shutil.rmtree(template, ignore_errors=True)
    print(f"{args.server} {args.action}: {result['rate']:.0f} msgs/s under the profiler")
    summarize(raw, args.top)
    print(f"\nraw stacks: {raw}\nflame graph: {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
