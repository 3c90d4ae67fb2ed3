#!/usr/bin/env bash
# Runs the libFuzzer harnesses (see the Makefile's fuzz targets).
#   run.sh regress NAME...   each harness once over its seeds (quick)
#   run.sh fuzz NAME         one harness for $FUZZ_SECONDS, niced, corpus kept
# A unit counts as a hang after $FUZZ_TIMEOUT seconds (default 60).  libFuzzer's
# timer is wall-clock: on a busy shared machine a harness at nice 19 got so
# little CPU that units taking 25-160 ms alone hit a 10 s, even a 60 s, limit.
# Hence a mild nice ($FUZZ_NICE, default 5) and the generous limit.
# Prints one summary line per harness; exits non-zero on any crash, leak,
# timeout or sanitizer report (the log's tail is printed then).
set -u
B=${FUZZ_BUILD:-build-fuzz}
mode=$1
shift
mkdir -p "$B/log" "$B/artifacts"
status=0
for name in "$@"; do
  bin=$B/fuzz_$name
  dirs=(tests/fuzz/seeds/$name)
  [ -d "$B/gen/$name" ] && dirs+=("$B/gen/$name")
  log=$B/log/$name.$mode.log
  if [ "$mode" = regress ]; then
    n=$(find "${dirs[@]}" -type f | wc -l)
    "$bin" -runs=0 -timeout=30 -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1
    rc=$?
    cov=$(grep -o 'INITED cov: [0-9]* ft: [0-9]*' "$log" | tail -1 | sed 's/INITED //')
    line="fuzz-regress $name: $n seeds, ${cov:-no coverage line}"
  else
    mkdir -p "$B/corpus/$name"
    secs=${FUZZ_SECONDS:-600}
    nice -n "${FUZZ_NICE:-5}" "$bin" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-60}" -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$B/artifacts/$name-" \
      "$B/corpus/$name" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units:[[:space:]]*[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -oE '(DONE|#[0-9]+).*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 |
          grep -oE 'cov: [0-9]+ ft: [0-9]+')
    rate=$(grep -o 'stat::average_exec_per_sec:[[:space:]]*[0-9]*' "$log" | grep -o '[0-9]*$')
    corp=$(find "$B/corpus/$name" -type f | wc -l)
    rss=$(grep -o 'stat::peak_rss_mb:[[:space:]]*[0-9]*' "$log" | grep -o '[0-9]*$')
    line="fuzz $name: ${secs}s, ${execs:-?} executions (${rate:-?}/s), ${cov:-?}, corpus $corp, peak RSS ${rss:-?} MB"
    echo "$line" >"$B/log/$name.summary"
  fi
  if [ $rc -ne 0 ]; then
    echo "$line: FAILED (exit $rc), log $log:"
    tail -n 60 "$log"
    status=1
  else
    echo "$line: ok"
  fi
done
exit $status
