#!/usr/bin/env bash
# Chapter 8's benchmark. On tokio's paused clock a seed gives the same run on every machine, and
# the tests assert its goodput and rejection rate there. On the real clock the figures depend on
# the machine and on how busy it is: this measures them, for the first and the last step of the
# client (`--client queue` and `--client adaptive`) and three seeds, beside
# the paused clock's figures for the same seed, one run at a time on a release build, and writes
# chapters/ch08_adaptive.table.md (which the chapter includes), stamped with the machine.
#
# Usage, from anywhere in the project: bash code/ch08_adaptive_bench.sh   (a couple of minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin ch08_adaptive
program=target/release/ch08_adaptive
table=chapters/ch08_adaptive.table.md
[ -w chapters ] || { echo "error: cannot write in chapters/" >&2; exit 2; }

# `goodput=0.96 rejected=0.00` from a run's summary line.
figures() {
  "$program" "$@" 2>/dev/null | sed -n 's/^summary: .* \(goodput=[0-9.]*\) \(rejected=[0-9.]*\) .*/\1 \2/p'
}
cell() { printf '%s' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

rows=""
for client in adaptive queue; do
  for seed in 1 2 3; do
    paused=$(figures --client "$client" --seed "$seed" --clock paused)
    real=$(figures --client "$client" --seed "$seed" --clock real)
    echo "$client seed=$seed paused: $paused real: $real" >&2
    rows+="| $client | $seed | $(cell "$paused" goodput) | $(cell "$real" goodput) "
    rows+="| $(cell "$paused" rejected) | $(cell "$real" rejected) |"$'\n'
  done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
os=$(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null || uname -s)
{
  echo "| client | seed | goodput, paused | goodput, real | rejected, paused | rejected, real |"
  echo "|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Measured by \`bash code/ch08_adaptive_bench.sh\` on $(date -u +%Y-%m-%d): ${cpu:-unknown CPU}," \
       "$(nproc) cores, $os, $(rustc --version | cut -d' ' -f1-2), release build, one run at a time."
} > "$table"
echo "wrote $table" >&2
