#!/usr/bin/env bash
# values_bench: `probe values` on a GPT-2-medium-shaped random model (24
# layers x 4096 neurons, vocab 50257, d 1024): all 98,304 value vectors
# projected, top 30 and bottom 30 each, into HDF5.  Reports, in one run:
#   - this machine's sgemm peak (bench/values_peak.c: OpenBLAS through GSL,
#     the path probe uses), measured before and after; the higher one counts;
#   - probe's wall time (under /usr/bin/time -v), its GFLOP/s counted as
#     2 * vocab * d * 98304 / wall time, the % of the peak, peak RSS;
#     with all threads and with 1 thread;
#   - the same job done with numpy (per layer V @ E.T + argpartition for the
#     top and bottom 30, float32), wall time and peak RSS.
# Standalone: bash bench/values_bench.sh   (env: BUILD, PROBE_BIN, PROBE_PY,
# THREADS = thread count of the main run, default all cores).  The model
# (1.8 GB) is written once into $BUILD/bench/.  Lines start "values_bench".
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PROBE_BIN=${PROBE_BIN:-$BUILD/probe}
PY=${PROBE_PY:-/usr/bin/python3}
THREADS=${THREADS:-$(nproc)}
dir=$BUILD/bench
mkdir -p "$dir"
model=$dir/values_gpt2m.bin
peak_bin=$dir/values_peak
out=$dir/values_bench.h5
V=50257 D=1024 NEURONS=98304

say() { echo "values_bench $*"; }

if [ ! -x "$peak_bin" ] || [ bench/values_peak.c -nt "$peak_bin" ]; then
    ${CC:-cc} -O3 -march=native -fopenmp bench/values_peak.c -o "$peak_bin" -lgsl -lopenblas
fi
[ -f "$model" ] || "$PY" bench/values_numpy.py mkmodel "$model"
[ -x "$PROBE_BIN" ] || { echo "values_bench: $PROBE_BIN not built (make)" >&2; exit 1; }

say "machine: $(nproc) cpus,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(free -g | awk '/Mem:/{print $2}') GB," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$model" >/dev/null # page cache: every timed run reads the file from memory

peak_of() { # threads, output of values_peak -> best GFLOP/s at that thread count
    awk -v t="$1" '$1 == "sgemm_peak" && $2 == "threads=" t { sub("gflops=", "", $3); print $3 }'
}
measure_peak() {
    local p
    p=$("$peak_bin" 1 "$THREADS")
    echo "$p" | sed 's/^/values_bench peak_run: /'
    PEAK1_RUNS+=" $(echo "$p" | peak_of 1)"
    PEAKT_RUNS+=" $(echo "$p" | peak_of "$THREADS")"
}
max_of() { echo "$@" | tr ' ' '\n' | awk 'NF && $1 > m { m = $1 } END { print m }'; }

# /usr/bin/time -v report -> "wall_seconds rss_mb"
time_fields() {
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; w = s }
                /Maximum resident set size/ { r = $2 / 1024 }
                END { printf "%.2f %.0f\n", w, r }' "$1"
}

run_probe() { # threads -> prints "wall rss compute_s working_mb"
    local t=$1 log=$dir/values_bench_probe_$1.log
    rm -f "$out"
    /usr/bin/time -v "$PROBE_BIN" values --model "$model" --layer all --top 30 --bottom 30 \
        --threads "$t" --out "$out" 2>"$log"
    local tf comp ws
    tf=$(time_fields "$log")
    comp=$(sed -n 's/.*; \([0-9.]*\) s, .*/\1/p' "$log")
    ws=$(sed -n 's/.*working set \([0-9.]*\) MiB.*/\1/p' "$log")
    echo "$tf $comp $ws"
}

PEAK1_RUNS="" PEAKT_RUNS=""
measure_peak

read -r pw prss pcomp pws <<<"$(run_probe "$THREADS")"
say "probe threads=$THREADS wall_s=$pw compute_s=$pcomp peak_rss_mb=$prss working_set_mb=$pws"
read -r p1w p1rss p1comp p1ws <<<"$(run_probe 1)"
say "probe threads=1 wall_s=$p1w compute_s=$p1comp peak_rss_mb=$p1rss working_set_mb=$p1ws"

nlog=$dir/values_bench_numpy.log
/usr/bin/time -v "$PY" bench/values_numpy.py job "$model" >"$nlog.out" 2>"$nlog"
read -r nw nrss <<<"$(time_fields "$nlog")"
say "numpy $(cat "$nlog.out") wall_s=$nw peak_rss_mb=$nrss"

measure_peak
PEAKT=$(max_of $PEAKT_RUNS)
PEAK1=$(max_of $PEAK1_RUNS)
say "sgemm_peak threads=$THREADS gflops=$PEAKT (runs:$PEAKT_RUNS)  threads=1 gflops=$PEAK1 (runs:$PEAK1_RUNS)"

awk -v V=$V -v D=$D -v N=$NEURONS -v t="$THREADS" -v pw="$pw" -v p1w="$p1w" -v pc="$pcomp" \
    -v pk="$PEAKT" -v pk1="$PEAK1" -v nw="$nw" -v prss="$prss" -v pws="$pws" 'BEGIN {
    f = 2 * V * D * N
    g = f / pw / 1e9; g1 = f / p1w / 1e9; gc = f / pc / 1e9
    w_e = V * D * 4 / 1048576; w_2 = 24 * D * 4096 * 4 / 1048576
    printf "values_bench RESULT threads=%d wall_s=%.1f gflops=%.1f pct_of_peak=%.0f%% (peak %.1f; compute only %.1f GFLOP/s = %.0f%%)\n", t, pw, g, 100 * g / pk, pk, gc, 100 * gc / pk
    printf "values_bench RESULT threads=1 wall_s=%.1f gflops=%.1f pct_of_1thread_peak=%.0f%% (peak %.1f); speedup %d threads vs 1: %.2fx\n", p1w, g1, 100 * g1 / pk1, pk1, t, p1w / pw
    printf "values_bench RESULT numpy wall_s=%.1f: probe is %.2fx faster\n", nw, nw / pw
    printf "values_bench RESULT peak_rss_mb=%d = weights touched %.0f (E %.0f + 24 W2 %.0f, mmap) + working set %.0f + rest %.0f\n", prss, w_e + w_2, w_e, w_2, pws, prss - w_e - w_2 - pws
}'
