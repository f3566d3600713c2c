"""Chapter 13's Python side: the same jobs as ch13_million.rs, with asyncio.

Prints one line, in the Rust program's format:
    pattern=NAME work=zero|sleep1ms|paced items=N seconds=S peak_rss_mb=M
Run by `cargo run --release --bin ch13_million -- --compare`, or alone:
    python3 code/ch13_million.py --pattern gather --work zero --items 1000000
"""

import argparse
import asyncio
import resource
import sys
import time

CONSUMERS = 50


async def job(number: int, work: str, start: float) -> int:
    if work == "sleep1ms":
        await asyncio.sleep(0.001)
    elif work == "paced":
        # Its slot on a schedule of 50 jobs a millisecond from `start`, as the Rust side's
        # sleep_until: a job that starts late waits less, or not at all (a delay of zero or
        # less returns after one turn of the event loop).
        slot = start + (number // CONSUMERS) * 0.001
        await asyncio.sleep(slot - asyncio.get_running_loop().time())
    return number


class Tally:
    """Count, sum and sum of squares of the jobs' numbers: if every job ran exactly once, they
    are those of range(items). No list of a million results needed."""

    def __init__(self) -> None:
        self.count = self.sum = self.sum_of_squares = 0

    def add(self, number: int) -> None:
        self.count += 1
        self.sum += number
        self.sum_of_squares += number * number

    def matches(self, items: int) -> bool:
        n = items
        return (self.count, self.sum, self.sum_of_squares) == (
            n,
            n * (n - 1) // 2,
            (n - 1) * n * (2 * n - 1) // 6,
        )


async def gathered(items: int, work: str) -> Tally:
    # Every coroutine at once, as the article's gather does; gather returns every result.
    tally = Tally()
    start = asyncio.get_running_loop().time()
    for number in await asyncio.gather(*(job(n, work, start) for n in range(items))):
        tally.add(number)
    return tally


async def queued(items: int, work: str) -> Tally:
    # The article's queue: maxsize 100, 50 consumers; the end is one sentinel per consumer.
    queue: asyncio.Queue = asyncio.Queue(maxsize=CONSUMERS * 2)
    stop = object()
    tally = Tally()
    start = asyncio.get_running_loop().time()

    async def consumer() -> None:
        while True:
            number = await queue.get()
            if number is stop:
                return
            tally.add(await job(number, work, start))

    async def producer() -> None:
        for number in range(items):
            await queue.put(number)
        for _ in range(CONSUMERS):
            await queue.put(stop)

    await asyncio.gather(producer(), *(consumer() for _ in range(CONSUMERS)))
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", choices=["gather", "queue"], required=True)
    parser.add_argument("--work", choices=["zero", "sleep1ms", "paced"], required=True)
    parser.add_argument("--items", type=int, default=1_000_000)
    options = parser.parse_args()
    if not 1 <= options.items <= 10_000_000:
        parser.error("--items: expected 1 to 10000000")

    run = gathered if options.pattern == "gather" else queued
    started = time.perf_counter()
    tally = asyncio.run(run(options.items, options.work))
    seconds = time.perf_counter() - started
    if not tally.matches(options.items):
        print(f"error: {options.pattern}: some jobs ran twice or not at all", file=sys.stderr)
        return 1
    # ru_maxrss is in kilobytes on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"pattern={options.pattern} work={options.work} items={options.items} "
        f"seconds={seconds:.6f} peak_rss_mb={peak_mb:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
