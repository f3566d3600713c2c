"""The capstone client's Python twin, for chapter 14's benchmark (code/ch14_capstone/bench.sh).

It does the Rust client's job the article's way: a producer reads the items lazily into an
asyncio.Queue(maxsize=100), 50 consumers take them off it and send them with one aiohttp
session, each under the Rust client's retry policy (client/retry.rs), and a writer records
what became of each in SQLite as the Rust client does (client/store.rs, client/queue.rs): the
same schema, the same statements, the same batches, on a thread so the event loop never blocks.

Same command line (the forms the benchmark uses), same item ids, same headers, same report.
Where it differs, on purpose: 50 consumers is a fixed concurrency, where the Rust client's is
an adaptive limit capped by --max-concurrency; and a signal stops it less gently (see `main`).

Needs Python 3.9 or later and aiohttp 3 (the benchmark installs it in a virtual environment).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import itertools
import math
import random
import re
import signal
import sqlite3
import sys
import threading
import time

import aiohttp

# --- The items, read lazily (client/items.rs) ---------------------------------------------

GOOD_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def generated(count):
    """`item-000000001`, ... as (seq, id, payload): the payload is the id."""
    for seq in range(1, count + 1):
        item_id = f"item-{seq:09d}"
        yield seq, item_id, item_id


def from_file(lines):
    """(seq, id, payload) a line, or (seq, None, reason) for a malformed one."""
    for seq, raw in enumerate(lines, start=1):
        try:
            line = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError:
            yield seq, None, "malformed line: the line is not UTF-8"
            continue
        item_id = line.split("\t", 1)[0]
        if GOOD_ID.fullmatch(item_id):
            yield seq, item_id, line
        else:
            yield seq, None, f"malformed line: bad id {item_id[:40]!r}"


# --- Progress in SQLite (client/store.rs and client/queue.rs) -----------------------------

SCHEMA_VERSION = 1
TABLES = """
    CREATE TABLE items (
        seq     INTEGER PRIMARY KEY,
        id      TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        state   TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
        claims  INTEGER NOT NULL DEFAULT 0,
        reason  TEXT
    );
    CREATE INDEX pending_items ON items (seq) WHERE state = 'pending';"""


class Store:
    """One connection, used from one thread at a time (the lock), like the Rust client's Mutex."""

    def __init__(self, path):
        self.lock_file = open(path, "ab")  # created if missing; the lock dies with the process
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"error: --db {path}: another run is using this database")
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise SystemExit(f"error: --db {path}: not this program's database ({error})")
        if (version, tables) != (0, 0) and (version != SCHEMA_VERSION or not self.ours()):
            raise SystemExit(f"error: --db {path}: an SQLite database, but not this program's")
        self.db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        if tables == 0:
            self.db.executescript(
                f"BEGIN; {TABLES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def ours(self):
        blank = sqlite3.connect(":memory:")
        blank.executescript(TABLES)
        layout = "SELECT type, name, sql FROM sqlite_master ORDER BY 1, 2"
        return blank.execute(layout).fetchall() == self.db.execute(layout).fetchall()

    def transaction(self, work):
        with self.lock:
            self.db.execute("BEGIN")
            try:
                result = work(self.db)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return result

    def import_lines(self, lines):
        rows = [(seq, item_id, payload, "pending", None) if item_id is not None
                else (seq, f"line:{seq}", "", "dead", payload)
                for seq, item_id, payload in lines]
        self.transaction(lambda db: db.executemany(
            "INSERT OR IGNORE INTO items (seq, id, payload, state, reason)"
            " VALUES (?, ?, ?, ?, ?)", rows))

    def recover(self):
        self.transaction(lambda db: db.execute(
            "UPDATE items SET state = 'pending' WHERE state = 'claimed'"))

    def claim(self, limit):
        rows = self.transaction(lambda db: db.execute(
            "UPDATE items SET state = 'claimed', claims = claims + 1 WHERE seq IN"
            " (SELECT seq FROM items WHERE state = 'pending' ORDER BY seq LIMIT ?)"
            " RETURNING seq, id, payload", (limit,)).fetchall())
        return sorted(rows)  # RETURNING promises no order

    def record(self, finished):
        def write(db):
            db.executemany("UPDATE items SET state = 'done' WHERE seq = ?",
                           [(seq,) for seq, reason in finished if reason is None])
            db.executemany("UPDATE items SET state = 'dead', reason = ? WHERE seq = ?",
                           [(reason, seq) for seq, reason in finished if reason is not None])
        self.transaction(write)

    def counts(self):
        with self.lock:
            return self.db.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'done'),"
                " count(*) FILTER (WHERE state = 'dead') FROM items").fetchone()

    def dead_letters(self, limit):
        with self.lock:
            return self.db.execute(
                "SELECT id, coalesce(reason, '') FROM items WHERE state = 'dead'"
                " ORDER BY seq LIMIT ?", (limit,)).fetchall()


IMPORT_BATCH, CLAIM_BATCH, WRITE_BATCH, WRITE_EVERY = 1000, 100, 500, 0.1


# --- The retry policy (client/retry.rs) ----------------------------------------------------

class Final(Exception):
    """The service will say no again: a 4xx other than 429, or an answer that makes no sense."""


class Retryable(Exception):
    def __init__(self, cause, retry_after=0.0):
        super().__init__(cause)
        self.cause, self.retry_after = cause, retry_after


# "connect": reset or closed once the request was on its way, so it may have reached the service;
# "unreachable": no connection at all, the request never left (refused: a service restarting).
CAUSES = ("429", "503", "5xx", "timeout", "connect", "unreachable")
BACKOFF_BASE, BACKOFF_CAP = 0.05, 2.0


def classify_status(response):
    seconds = response.headers.get("Retry-After", "").strip()
    retry_after = min(int(seconds), 60) if seconds.isdigit() else 0  # at most a minute
    if response.status == 429:
        return Retryable("429", retry_after)
    if response.status == 503:
        return Retryable("503", retry_after)
    if response.status >= 500:
        return Retryable("5xx", retry_after)
    return Final(f"refused: {response.status}")


def backoff(retry, retry_after):
    """What the service asked for, plus full jitter up to 50 ms x 2^(retry-1), at most 2 s."""
    ceiling = min(BACKOFF_BASE * 2 ** (retry - 1), BACKOFF_CAP)
    return retry_after + random.random() * ceiling


class RetryBudget:
    """A fifth of a retry earned per item started, up to 100 saved; a retry spends one."""

    def __init__(self):
        self.tokens = 100.0

    def deposit(self):
        self.tokens = min(self.tokens + 0.2, 100.0)

    def try_withdraw(self):
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Spaces requests 1/rate apart, each at the next free moment (client/limiter.rs)."""

    def __init__(self, per_second):
        self.interval, self.next_free = 1.0 / per_second, time.monotonic()

    async def wait_turn(self):
        turn = max(self.next_free, time.monotonic())
        self.next_free = turn + self.interval
        await asyncio.sleep(turn - time.monotonic())


# --- The report (client/report.rs): the same histogram, three significant digits ----------

class Stats:
    def __init__(self):
        self.requests = 0
        self.retries = dict.fromkeys(CAUSES, 0)
        self.buckets = [0] * (1000 + 7 * 900)

    def answered(self, seconds, succeeded):
        self.requests += 1
        if succeeded:
            micros = min(int(seconds * 1e6), 999_999_999)
            if micros < 1000:
                self.buckets[micros] += 1
            else:
                decade = len(str(micros)) - 3
                self.buckets[1000 + (decade - 1) * 900 + micros // 10 ** decade - 100] += 1

    def percentile_ms(self, share):
        rank, seen = max(math.ceil(share * sum(self.buckets)), 1), 0
        for index, count in enumerate(self.buckets):
            seen += count
            if seen >= rank:
                if index < 1000:
                    return index / 1000
                decade, leading = (index - 1000) // 900 + 1, (index - 1000) % 900 + 100
                return leading * 10 ** decade / 1000
        return 0.0

    def print(self, counts, dead, elapsed):
        _, done, dead_count = counts
        r = self.retries
        lines = [f"done={done}", f"dead_letters={dead_count}",
                 f"retries: 429={r['429']} 503={r['503']} 5xx={r['5xx']}"
                 f" timeout={r['timeout']} connect={r['connect']} unreachable={r['unreachable']}",
                 f"latency_ms: p50={self.percentile_ms(0.5):.1f}"
                 f" p99={self.percentile_ms(0.99):.1f}",
                 f"requests_per_second={self.requests / max(elapsed, 1e-9):.0f}"]
        lines += [f"dead: {item_id} {reason}" for item_id, reason in dead]
        lines.append(f"elapsed time: {elapsed:.2f} seconds")
        print("\n".join(lines), flush=True)


# --- One item, from claim to outcome (client/worker.rs) ------------------------------------

class Client:
    def __init__(self, options, session, stats):
        self.options, self.session, self.stats = options, session, stats
        self.budget = RetryBudget()
        self.rate = RateLimiter(options.rate) if options.rate else None

    async def process(self, item_id, payload):
        """None when done, the reason when dead."""
        self.budget.deposit()
        last = []
        try:
            return await within(self.options.deadline, self.attempts(item_id, payload, last))
        except asyncio.TimeoutError:
            cause = f", the last: {last[-1]}" if last else ""
            return f"deadline of {self.options.deadline} s passed{cause}"

    async def attempts(self, item_id, payload, last):
        failed = retry = 0
        while True:
            try:
                await self.send(item_id, payload)
                return None
            except Final as error:
                return str(error)
            except Retryable as error:
                cause, retry_after = error.cause, error.retry_after
            last.append(cause)
            # A 429 (the service saying when) or no connection at all (a service restarting) is not
            # the item failing: it costs neither an attempt nor the budget; the deadline bounds it.
            if cause not in ("429", "unreachable"):
                failed += 1
                if failed >= self.options.attempts:
                    return f"{failed} attempts failed, the last: {cause}"
                if not self.budget.try_withdraw():
                    return f"retry budget spent, the last failure: {cause}"
            self.stats.retries[cause] += 1
            retry += 1
            await asyncio.sleep(backoff(retry, retry_after))

    async def send(self, item_id, payload):
        if self.rate:
            await self.rate.wait_turn()
        sent_at = time.monotonic()
        try:
            await self.request(item_id, payload)
        except (Final, Retryable):
            self.stats.answered(time.monotonic() - sent_at, False)
            raise
        self.stats.answered(time.monotonic() - sent_at, True)

    async def request(self, item_id, payload):
        headers = {"Idempotency-Key": item_id, "X-Client-Id": self.options.client_id}
        url = f"{self.options.url}/items/{item_id}"
        try:
            async with self.session.post(url, data=payload.encode(), headers=headers) as answer:
                if not 200 <= answer.status < 300:
                    raise classify_status(answer)
                try:
                    applied = await answer.json()
                except (aiohttp.ContentTypeError, ValueError) as error:
                    raise Final(f"malformed answer: {error}")
        except asyncio.TimeoutError:  # connecting included, as reqwest counts it
            raise Retryable("timeout")
        except aiohttp.ClientConnectorError:  # refused: the request never left
            raise Retryable("unreachable")
        except aiohttp.ClientError:  # reset, closed without an answer, cut short
            raise Retryable("connect")
        if not isinstance(applied, dict) or applied.get("id") != item_id:
            raise Final(f"answer for another id: {applied!r:.60}")


# --- The run: a producer, 50 consumers, a writer -----------------------------------------

async def produce(store, source, queue, consumers, stop):
    """Imports the source a batch at a time, claims what is pending, and queues it."""
    await asyncio.to_thread(store.recover)
    exhausted = False
    while not stop.is_set() and not exhausted:
        batch = list(itertools.islice(source, IMPORT_BATCH))
        exhausted = len(batch) < IMPORT_BATCH
        if batch:
            await asyncio.to_thread(store.import_lines, batch)
        while not stop.is_set():
            claimed = await asyncio.to_thread(store.claim, CLAIM_BATCH)
            if not claimed:
                break
            for item in claimed:
                await queue.put(item)
    for _ in range(consumers):
        await queue.put(None)  # one "no more" each


async def consume(client, queue, results, stop):
    while (item := await queue.get()) is not None and not stop.is_set():
        seq, item_id, payload = item
        reason = await client.process(item_id, payload)
        if reason is not None:
            print(f"warning: dead letter {item_id}: {reason}", file=sys.stderr)
        await results.put((seq, reason))


async def write(store, results):
    """Commits outcomes in batches: up to 500, or what came in 100 ms after the first."""
    more = True
    while more and (first := await results.get()) is not None:
        batch = [first]
        try:
            more = await within(WRITE_EVERY, collect(results, batch))
        except asyncio.TimeoutError:
            pass
        await asyncio.to_thread(store.record, batch)


async def collect(results, batch):
    """Adds outcomes to the batch until it is full (True) or the last has come (False)."""
    while len(batch) < WRITE_BATCH:
        outcome = await results.get()
        if outcome is None:
            return False
        batch.append(outcome)
    return True


async def within(seconds, coroutine):
    """`coroutine`, or asyncio.TimeoutError after `seconds`: one timer, no task on 3.11+."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await coroutine
    return await asyncio.wait_for(coroutine, seconds)


async def run(options):
    source = (generated(options.generate) if options.generate
              else from_file(open(options.items, "rb")))
    timeout = aiohttp.ClientTimeout(total=options.request_timeout,
                                    sock_connect=options.connect_timeout)
    connector = aiohttp.TCPConnector(limit=options.consumers)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        try:
            async with session.get(f"{options.url}/health") as answer:
                if answer.status != 200:
                    raise SystemExit(f"error: {options.url}/health answered {answer.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise SystemExit(f"error: no service at {options.url}: {error or type(error).__name__}")
        store = Store(options.db)
        started = time.monotonic()
        stats, stop, stopped = Stats(), asyncio.Event(), []
        for number, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            def on_signal(status=status):
                stopped.append(status)
                stop.set()
            asyncio.get_running_loop().add_signal_handler(number, on_signal)
        client = Client(options, session, stats)
        queue, results = asyncio.Queue(maxsize=100), asyncio.Queue(maxsize=2 * WRITE_BATCH)
        writer = asyncio.create_task(write(store, results))
        consumers = [asyncio.create_task(consume(client, queue, results, stop))
                     for _ in range(options.consumers)]
        producer = asyncio.create_task(produce(store, source, queue, options.consumers, stop))
        working, signalled = asyncio.gather(producer, *consumers), asyncio.create_task(stop.wait())
        await asyncio.wait([working, signalled], return_when=asyncio.FIRST_COMPLETED)
        if working.done():
            signalled.cancel()
            working.result()  # a consumer's or the producer's exception, raised here
        else:
            # A signal: the consumers finish the item in hand, for up to --grace seconds; the
            # items they drop stay claimed and are sent again by the next run.
            producer.cancel()
            await asyncio.wait(consumers, timeout=options.grace)
            working.cancel()
            try:
                await working
            except asyncio.CancelledError:
                pass
        await results.put(None)
        await writer
        counts = store.counts()
        stats.print(counts, store.dead_letters(20), time.monotonic() - started)
        if stopped:
            return stopped[0]
        return 0 if counts[1] == counts[0] else 1


def seconds(text):
    value = float(text)
    if not 0.001 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be from 0.001 to 86400 seconds")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, type=lambda url: url.rstrip("/"))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--items", metavar="FILE")
    source.add_argument("--generate", metavar="N", type=int)
    parser.add_argument("--db", required=True, metavar="PATH")
    parser.add_argument("--client-id", default="ch14-client")
    parser.add_argument("--consumers", type=int, default=50)
    parser.add_argument("--rate", type=float, metavar="PER_SECOND")
    parser.add_argument("--attempts", type=int, default=5)
    parser.add_argument("--deadline", type=seconds, default=30.0)
    parser.add_argument("--request-timeout", type=seconds, default=5.0)
    parser.add_argument("--connect-timeout", type=seconds, default=1.0)
    parser.add_argument("--grace", type=seconds, default=5.0)
    options = parser.parse_args()
    if sqlite3.sqlite_version_info < (3, 35):
        parser.exit(2, f"error: SQLite {sqlite3.sqlite_version} lacks RETURNING (3.35 or later)\n")
    if options.items:
        try:
            open(options.items, "rb").close()
        except OSError as error:
            parser.exit(2, f"error: --items {options.items}: {error.strerror}\n")
    try:
        sys.exit(asyncio.run(run(options)))
    except SystemExit as exit:
        if isinstance(exit.code, str):  # our "error: ..." lines: bad input, status 2
            print(exit.code, file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
