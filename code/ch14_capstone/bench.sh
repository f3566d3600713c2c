#!/usr/bin/env bash
# Chapter 14's benchmark: the capstone's Rust client against its Python twin (twin.py, the
# article's way: asyncio, a Queue and 50 consumers, aiohttp), doing the same job against the same
# service: the same items, 50 requests at most in flight, the same retry policy, the same SQLite
# progress. For each scenario it starts a fresh service on a free port, runs one client against
# it with a fresh database, checks every item is done once (the client's report, its database,
# and the service's ledger agree), then does the same for the other client. It measures each
# client process alone (GNU time: user + system CPU, peak resident memory) and the service's CPU,
# and writes chapters/ch14_capstone.table.md, stamped with the machine. A benchmark, not a test:
# its figures belong to the machine, and it takes about two minutes.
#
# Usage, from the project's root:    bash code/ch14_capstone/bench.sh
# Needs: cargo, python3 3.9 or later (with venv and pip), GNU time at /usr/bin/time; on first
# use it makes a virtual environment and installs aiohttp there from PyPI (nothing else needs it).
# Environment:
#   CAPSTONE_BIN_DIR  folder of already built ch14_capstone_service and ch14_capstone_client:
#                     builds nothing (default: builds them in release, into
#                     ${CARGO_TARGET_DIR:-target}/release, and uses those)
#   BENCH_VENV        the Python virtual environment (default: target/bench-venv)
#   BENCH_TABLE       where the table goes (default: chapters/ch14_capstone.table.md)
#   BENCH_PLOT        where the plot goes (default: chapters/ch14_capstone.svg)
set -euo pipefail
cd "$(dirname "$0")/../.."

AIOHTTP=3.13.5          # the last aiohttp that still runs on Python 3.9
CONCURRENCY=50          # the twin's consumers; the Rust client's --max-concurrency
venv=${BENCH_VENV:-target/bench-venv}
table=${BENCH_TABLE:-chapters/ch14_capstone.table.md}
plot=${BENCH_PLOT:-chapters/ch14_capstone.svg}
twin=code/ch14_capstone/twin.py
fail() { echo "error: $*" >&2; exit 1; }

# The figures are only as good as the machine is quiet: the load before anything (a build
# raises it) goes in the table.
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v load="$load" 'BEGIN { exit !(load > 0.5) }'; then
  echo "warning: the machine is busy (load average $load): the figures will show it" >&2
fi

# --- What it needs -------------------------------------------------------------------------
[ -x /usr/bin/time ] || fail "GNU time is not at /usr/bin/time (Debian: apt-get install time)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null \
  || fail "needs python3 3.9 or later on the PATH"
if [ -n "${CAPSTONE_BIN_DIR:-}" ]; then
  bin=$CAPSTONE_BIN_DIR
else
  bin=${CARGO_TARGET_DIR:-target}/release
  cargo build --release --quiet --bin ch14_capstone_service --bin ch14_capstone_client
fi
service=$bin/ch14_capstone_service
client=$bin/ch14_capstone_client
[ -x "$service" ] && [ -x "$client" ] || fail "no ch14_capstone_service and _client in $bin"
if ! "$venv/bin/python" -c "import aiohttp, sys; sys.exit(aiohttp.__version__ != '$AIOHTTP')" \
  2>/dev/null; then
  echo "setting up $venv with aiohttp $AIOHTTP" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "aiohttp==$AIOHTTP"
fi
python=$venv/bin/python

# --- One run: a fresh service, one client, checked --------------------------------------------
work=$(mktemp -d)
service_pid="" client_pid=""
cleanup() {
  # GNU time leaves its child running when it is killed: the client first, by its parent's id.
  if [ -n "$client_pid" ]; then
    pkill -KILL -P "$client_pid" 2>/dev/null || true
    kill -KILL "$client_pid" 2>/dev/null || true
  fi
  if [ -n "$service_pid" ]; then kill -KILL "$service_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ticks=$(getconf CLK_TCK)

# start_service ARGS...: sets service_pid and url.
start_service() {
  "$service" "$@" >"$work/service.out" 2>"$work/service.err" &
  service_pid=$!
  for _ in $(seq 100); do
    url=$(sed -n '1s/^listening on //p' "$work/service.out")
    [ -n "$url" ] && return 0
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$work/service.err" >&2
  fail "the service did not say where it listens"
}

# stop_service: SIGTERM, its ledger line, and the CPU it used (read before it stops).
stop_service() {
  local stat
  stat=$(cut -d' ' -f14,15 "/proc/$service_pid/stat")
  service_cpu=$(awk -v t="${stat% *}" -v s="${stat#* }" -v hz="$ticks" \
    'BEGIN { printf "%.2f", (t + s) / hz }')
  kill -TERM "$service_pid"
  wait "$service_pid" || fail "the service exited with status $?"
  service_pid=""
  ledger=$(sed -n 's/^ledger: //p' "$work/service.out")
}

# field KEY TEXT: the value of KEY=value in TEXT.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# measure SCENARIO SIDE ITEMS SERVICE_ARGS -- CLIENT_ARGS: one row of figures in `rows`.
declare -A figures
measure() {
  local scenario=$1 side=$2 items=$3 service_args=() client_args=() command
  shift 3
  while [ "$1" != "--" ]; do service_args+=("$1"); shift; done
  shift
  client_args=("$@")
  if [ "$side" = Rust ]; then
    command=("$client" --max-concurrency "$CONCURRENCY")
  else
    command=("$python" "$twin" --consumers "$CONCURRENCY")
  fi
  start_service "${service_args[@]}"
  rm -f "$work"/progress.db*
  local status=0
  # In the background and waited for, so that a signal to this script reaches its trap at once.
  /usr/bin/time -f '%U %S %M' -o "$work/time" "${command[@]}" --url "$url" \
    --generate "$items" --db "$work/progress.db" "${client_args[@]}" \
    >"$work/report" 2>"$work/client.err" </dev/null &
  client_pid=$!
  wait "$client_pid" || status=$?
  client_pid=""
  stop_service
  local report time n_done dead rps elapsed requests applied in_db limit
  report=$(tr '\n' ' ' <"$work/report")
  time=$(tail -n 1 "$work/time")
  n_done=$(field done "$report")
  dead=$(field dead_letters "$report")
  rps=$(field requests_per_second "$report")
  elapsed=$(sed -n 's/^elapsed time: \([0-9.]*\) seconds$/\1/p' "$work/report")
  requests=$(field requests "$ledger")
  applied=$(field applied "$ledger")
  in_db=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
    \"SELECT count(*) FROM items WHERE state = 'done'\").fetchone()[0])" "$work/progress.db")
  if [ "$status" -ne 0 ] || [ "$n_done" != "$items" ] || [ "$dead" != 0 ] \
    || [ "$applied" != "$items" ] || [ "$in_db" != "$items" ]; then
    cat "$work/report" "$work/client.err" >&2
    fail "$scenario, $side: exit $status, done=$n_done dead=$dead, in its database $in_db," \
      "the ledger says $ledger (expected $items items)"
  fi
  # The Rust client's adaptive limit, as it logged it at the end; the twin's is fixed.
  limit=$CONCURRENCY
  if [ "$side" = Rust ]; then
    limit=$(sed -n 's/.*finished.*limit=\([0-9.]*\).*/\1/p' "$work/client.err" | tail -n 1)
  fi
  read -r user system peak <<<"$time"
  local key="$scenario/$side"
  figures[$key.rps]=$rps
  figures[$key.cpu]=$(calc "($user + $system) * 10000 / $requests")
  figures[$key.mib]=$(calc "$peak / 1024" 1)
  figures[$key.elapsed]=$elapsed
  figures[$key.requests]=$requests
  figures[$key.service]=$service_cpu
  figures[$key.limit]=$limit
  figures[$key.retries]=$(sed -n 's/^retries: //p' "$work/report")
  figures[$key.cores]=$(calc "($user + $system + $service_cpu) / $elapsed" 2)
  figures[$key.client_cores]=$(calc "($user + $system) / $elapsed" 2)
  figures[$key.p50]=$(sed -n 's/^latency_ms: p50=\([0-9.]*\) .*/\1/p' "$work/report")
  echo "$scenario, $side: $items items, $requests requests in $elapsed s ($rps/s)," \
    "CPU ${user}+${system} s, peak ${peak} KiB, service CPU $service_cpu s, limit $limit" >&2
}

# --- The scenarios --------------------------------------------------------------------------
no_quota=(--quota 1000000 --burst 1000000)
scenarios=(latency fast rate retry)
declare -A title items service_args client_args
title[latency]="No quota: the service's 10 ms latency is the limit"
items[latency]=20000
service_args[latency]="${no_quota[*]}"
title[fast]="No quota, no latency: as fast as it goes"
items[fast]=120000
service_args[fast]="${no_quota[*]} --latency-ms 0"
title[rate]="The service's quota (2000 requests/s), both clients keeping to it with \`--rate 2000\`"
items[rate]=10000
service_args[rate]=""
client_args[rate]="--rate 2000"
title[retry]="The service's quota (2000 requests/s), no \`--rate\`: the retry policy meets the 429s"
items[retry]=10000
service_args[retry]=""

for scenario in "${scenarios[@]}"; do
  for side in Rust Python; do
    # shellcheck disable=SC2086 # the arguments are words, split on purpose
    measure "$scenario" "$side" "${items[$scenario]}" ${service_args[$scenario]} \
      -- ${client_args[$scenario]:-}
  done
done

# What the twin's CPU includes before its first request: the interpreter starting, and imports.
/usr/bin/time -f '%U %S' -o "$work/time" "$python" -c 'import aiohttp, asyncio, sqlite3'
startup=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time")

# --- The table --------------------------------------------------------------------------------
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo missed; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
os=$(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null || uname -s)
{
  echo "Measured by \`bash code/ch14_capstone/bench.sh\` on $(date -u +%Y-%m-%d): ${cpu:-unknown CPU}," \
    "$(nproc) cores shared by the service and the client, $os, $(rustc --version | cut -d' ' -f1-2)," \
    "release build; $("$python" --version) with aiohttp $AIOHTTP; load average $load before the" \
    "runs. One run at a time; each client" \
    "against a fresh service and a fresh database, at most $CONCURRENCY requests in flight." \
    "CPU is the client process's user + system time alone; requests are the service's count" \
    "of them (retries included). In the last row, Rust's requests/s as a multiple of Python's," \
    "and Rust's CPU per request and peak memory as a fraction of Python's."
  for scenario in "${scenarios[@]}"; do
    r=$scenario/Rust p=$scenario/Python
    echo
    echo "### ${title[$scenario]}"
    echo
    if [ -n "${service_args[$scenario]}" ]; then
      echo "${items[$scenario]} items. Service: \`ch14_capstone_service ${service_args[$scenario]}\`," \
        "its defaults otherwise (capacity 64, latency 10 ms, quota 2000/s, burst 100)."
    else
      echo "${items[$scenario]} items. Service: \`ch14_capstone_service\` with its defaults" \
        "(capacity 64, latency 10 ms, quota 2000/s, burst 100)."
    fi
    extra=${client_args[$scenario]:-}
    echo "Clients: \`--generate ${items[$scenario]}${extra:+ $extra}\`, the Rust one with" \
      "\`--max-concurrency $CONCURRENCY\`, the twin with \`--consumers $CONCURRENCY\`."
    echo
    echo "| client | requests/s | CPU s per 10,000 requests | peak memory (MiB) | requests | retries | service CPU (s) |"
    echo "|---|---|---|---|---|---|---|"
    for side in Rust Python; do
      k=$scenario/$side
      echo "| $side | ${figures[$k.rps]} | ${figures[$k.cpu]} | ${figures[$k.mib]} |" \
        "${figures[$k.requests]} | ${figures[$k.retries]} | ${figures[$k.service]} |"
    done
    rps_ratio=$(calc "${figures[$r.rps]} / ${figures[$p.rps]}" 2)
    cpu_ratio=$(calc "${figures[$p.cpu]} / ${figures[$r.cpu]}" 1)
    mib_ratio=$(calc "${figures[$p.mib]} / ${figures[$r.mib]}" 1)
    echo "| Rust vs Python | × $rps_ratio | 1/$cpu_ratio | 1/$mib_ratio | | | |"
    echo
    echo "- CPU per request: Rust's is 1/$cpu_ratio of Python's (goal: 1/10 or less):" \
      "$(verdict "$cpu_ratio >= 10")."
    case $scenario in
      latency)
        ceiling=$(calc "$CONCURRENCY * 1000 / 10" 0)
        echo "- Requests per second: the service is the bottleneck. $CONCURRENCY requests in flight" \
          "that each take the service 10 ms allow $ceiling requests/s at most; Rust reached" \
          "${figures[$r.rps]} ($(calc "100 * ${figures[$r.rps]} / $ceiling" 0) %), Python" \
          "${figures[$p.rps]} ($(calc "100 * ${figures[$p.rps]} / $ceiling" 0) %), so ten" \
          "times Python's rate cannot be had here (goal not applicable). Rust's adaptive" \
          "limit ended at ${figures[$r.limit]}." ;;
      fast)
        echo "- Requests per second: Rust × $rps_ratio Python's (goal: × 10):" \
          "$(verdict "$rps_ratio >= 10"). The service makes no one wait here. The twin kept" \
          "${figures[$p.client_cores]} of a core busy: its one thread, which runs the event loop," \
          "is its bottleneck. The Rust client used ${figures[$r.client_cores]} cores and the" \
          "service ${figures[$r.service]} s of CPU, together ${figures[$r.cores]} of the $(nproc)" \
          "cores they share: what bounds Rust is the round trip between two processes on" \
          "$(nproc) cores (p50 ${figures[$r.p50]} ms a request, against" \
          "${figures[$p.p50]} ms for the twin), not a full core. Rust's adaptive limit ended at" \
          "${figures[$r.limit]}." ;;
      rate)
        echo "- Requests per second: the quota is the bottleneck, 2000 requests/s for the client" \
          "id (burst 100); Rust made ${figures[$r.rps]} requests/s, Python ${figures[$p.rps]}," \
          "the same requests each, so only the cost can differ (goal not applicable). Items took" \
          "${figures[$r.elapsed]} s (Rust) and ${figures[$p.elapsed]} s (Python)." ;;
      retry)
        echo "- Requests per second: the quota is the bottleneck, 2000 requests/s for the client" \
          "id (burst 100), so ten times Python's rate cannot be had (goal not applicable). The" \
          "two made different numbers of requests (their retries meet the 429s differently," \
          "see below), so requests/s compares unlike work here: items per second do not, Rust" \
          "$(calc "${items[$scenario]} / ${figures[$r.elapsed]}" 0), Python" \
          "$(calc "${items[$scenario]} / ${figures[$p.elapsed]}" 0) (items took" \
          "${figures[$r.elapsed]} s and ${figures[$p.elapsed]} s)." ;;
    esac
  done
  echo
  echo "The same work on both sides: the same items and ids, headers, timeouts (5 s a request," \
    "1 s to connect), retry policy (5 attempts, 429s and refused connections not counted," \
    "Retry-After plus full jitter from 50 ms to 2 s, a retry budget, 30 s an item), SQLite" \
    "statements and batches (1000 lines a commit on import, 100 items a claim, up to 500" \
    "outcomes or 100 ms a commit, on a thread beside the event loop), latency histogram and" \
    "report. Where it differs: the Rust client's concurrency is an adaptive limit (AIMD from" \
    "8, cut by 503s, timeouts and refused connections) capped" \
    "at $CONCURRENCY, with up to 4 items a permit in progress so that an item waiting out its" \
    "backoff frees its permit; the twin has $CONCURRENCY fixed consumers, each holding its item" \
    "through its backoff. So under the quota without \`--rate\` the Rust client keeps more items" \
    "coming and is refused more often (the requests column): CPU is counted per request for" \
    "that reason. The Rust client also writes tracing logs (two lines at info) and keeps a" \
    "progress bar hidden off a terminal. The twin's CPU includes starting the interpreter and" \
    "importing aiohttp, $startup s on this machine."
} >"$table"
echo "wrote $table" >&2

# --- The plot: requests/s and CPU per request, each scenario, both sides -----------------------
for scenario in "${scenarios[@]}"; do
  for side in Rust Python; do
    k=$scenario/$side
    printf '%s\t%s\t%s\t%s\n' "$scenario" "$side" "${figures[$k.rps]}" "${figures[$k.cpu]}"
  done
done | python3 -c '
import sys
rows = [line.split("\t") for line in sys.stdin.read().splitlines()]
scenarios = list(dict.fromkeys(row[0] for row in rows))
value = {(s, side, i): float(v) for s, side, *vs in rows for i, v in enumerate(vs)}
colour = {"Rust": "#b7410e", "Python": "#3572a5"}
panels = [("requests per second (higher is better)", 0), ("CPU seconds per 10,000 requests (lower is better)", 1)]
W, H, top, left, bar = 700, 250, 40, 60, 26
out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H * 2 + 30}\" font-family=\"sans-serif\" font-size=\"12\">",
       f"<rect width=\"{W}\" height=\"{H * 2 + 30}\" fill=\"white\"/>"]
for p, (title, i) in enumerate(panels):
    y0 = p * H + top
    most = max(value[(s, side, i)] for s in scenarios for side in colour) or 1
    out.append(f"<text x=\"{left}\" y=\"{y0 - 14}\" font-weight=\"bold\">{title}</text>")
    height = H - top - 40
    out.append(f"<line x1=\"{left}\" y1=\"{y0 + height}\" x2=\"{W - 10}\" y2=\"{y0 + height}\" stroke=\"black\"/>")
    step = (W - left - 20) / len(scenarios)
    for n, s in enumerate(scenarios):
        x = left + n * step + step / 2 - bar
        for m, side in enumerate(colour):
            v = value[(s, side, i)]
            h = height * v / most
            out.append(f"<rect x=\"{x + m * bar:.1f}\" y=\"{y0 + height - h:.1f}\" width=\"{bar - 2}\" height=\"{h:.1f}\" fill=\"{colour[side]}\"><title>{side}, {s}: {v:g}</title></rect>")
            out.append(f"<text x=\"{x + m * bar + bar / 2 - 1:.1f}\" y=\"{y0 + height - h - 3:.1f}\" text-anchor=\"middle\" font-size=\"10\">{v:g}</text>")
        out.append(f"<text x=\"{x + bar:.1f}\" y=\"{y0 + height + 16}\" text-anchor=\"middle\">{s}</text>")
for m, side in enumerate(colour):
    out.append(f"<rect x=\"{W - 150 + m * 70}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{colour[side]}\"/><text x=\"{W - 134 + m * 70}\" y=\"16\">{side}</text>")
out.append("</svg>")
print("\n".join(out))
' >"$plot"
echo "wrote $plot" >&2
