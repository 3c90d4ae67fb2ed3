#!/usr/bin/env bash
# values_bench: `probe values` on a GPT-2-medium-shaped random model (24
# layers x 4096 neurons, vocab 50257, d 1024, written by bench/mkmodel as a
# llama2.c checkpoint, 1.8 GB, once, into $BUILD/bench/): all 98,304 value
# vectors projected, top 30 and bottom 30 each, into HDF5.  In one run:
#   - this machine's sgemm peak (bench/values_peak.c: OpenBLAS through GSL,
#     the path probe uses), measured before and after; the higher one counts;
#   - probe's wall time under /usr/bin/time -v, its GFLOP/s counted as
#     2 * vocab * d * 98304 / wall time, the % of the peak, peak RSS split
#     into the weights it touches and its working set;
#   - the same job done with numpy (per layer W2.T @ E.T + argpartition for
#     the top and bottom 30, float32), wall time and peak RSS.
# On a shared machine wall time depends on the other processes, so every
# figure is also given per CPU-second (user + sys time of the process), and
# the load average is printed.
#
# Standalone:  make BUILD=build-x build-x/probe build-x/bench/mkmodel \
#                   build-x/bench/values_peak && BUILD=build-x bash bench/values_bench.sh
# (missing binaries are built with make).  Env: BUILD, PROBE_BIN, PROBE_PY,
# PROBE_SHARED (unused: the model is generated); THREADS (default: all
# cores); VALUES_BENCH_1THREAD=1 adds a 1-thread probe run.
# Progress goes to stderr, the table to stdout; raw logs stay in
# $BUILD/bench/values_*.log.  Exit status non-zero only if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PROBE_BIN=${PROBE_BIN:-$BUILD/probe}
PY=${PROBE_PY:-/usr/bin/python3}
THREADS=${THREADS:-$(nproc)}
dir=$BUILD/bench
mkdir -p "$dir"
model=$dir/values_gpt2m.bin
out=$dir/values_bench.h5
V=50257 D=1024 F=4096 L=24
NEURONS=$((F * L))

step() { echo "values_bench: $*" >&2; }
fail() { echo "values_bench: $*" >&2; exit 1; }

for b in "$dir/mkmodel" "$dir/values_peak" "$PROBE_BIN"; do
    [ -x "$b" ] || make -s BUILD="$BUILD" "$b" >&2 || fail "cannot build $b"
done
[ -x /usr/bin/time ] || fail "/usr/bin/time is missing (Debian package 'time'; make deps)"
if [ ! -f "$model" ]; then
    step "writing the model $model"
    "$dir/mkmodel" "$model" $D $F $L 16 16 $V 1024 >&2 || fail "mkmodel failed"
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cat "$model" >/dev/null # page cache: every timed run reads the file from memory

# /usr/bin/time -v report -> "wall_s cpu_s rss_mb"
time_fields() {
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; w = s }
                /User time/ { c += $2 } /System time/ { c += $2 }
                /Maximum resident set size/ { r = $2 / 1024 }
                END { printf "%.2f %.2f %.0f\n", w, c, r }' "$1"
}

PEAK_WALL=0 PEAK_CPU=0 PEAK_RUNS=""
measure_peak() {
    local log=$dir/values_peak_$1.log
    step "sgemm peak ($1), $THREADS threads"
    "$dir/values_peak" "$THREADS" >"$log" || fail "values_peak failed"
    local w c
    read -r w c <<<"$(awk '$1 == "sgemm_peak" { sub("gflops=", "", $3); sub("cpu_gflops=", "", $4); print $3, $4 }' "$log")"
    PEAK_RUNS+=" $w"
    PEAK_WALL=$(awk -v a="$PEAK_WALL" -v b="$w" 'BEGIN { print (b > a ? b : a) }')
    PEAK_CPU=$(awk -v a="$PEAK_CPU" -v b="$c" 'BEGIN { print (b > a ? b : a) }')
}

run_probe() { # threads -> "wall_s cpu_s rss_mb compute_s working_mb"
    local t=$1 log=$dir/values_probe_$1.log
    rm -f "$out"
    step "probe values, all $NEURONS neurons, top 30 + bottom 30, $t threads"
    /usr/bin/time -v "$PROBE_BIN" values --model "$model" --layer all --top 30 --bottom 30 \
        --threads "$t" --out "$out" 2>"$log" || fail "probe values failed: $(tail -3 "$log")"
    local comp ws
    comp=$(sed -n 's/.*; \([0-9.]*\) s, .*/\1/p' "$log")
    ws=$(sed -n 's/.*working set \([0-9.]*\) MiB.*/\1/p' "$log")
    echo "$(time_fields "$log") $comp $ws"
}

measure_peak before
read -r pw pc prss pcomp pws <<<"$(run_probe "$THREADS")"
p1=""
if [ "${VALUES_BENCH_1THREAD:-0}" = 1 ]; then
    read -r p1w p1c p1rss p1comp p1ws <<<"$(run_probe 1)"
    p1="$p1w $p1c"
fi
step "the same job with numpy"
nlog=$dir/values_numpy.log
/usr/bin/time -v "$PY" bench/values_numpy.py job "$model" >"$nlog.out" 2>"$nlog" \
    || fail "numpy job failed: $(tail -3 "$nlog")"
read -r nw nc nrss <<<"$(time_fields "$nlog")"
measure_peak after
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$out"

awk -v V=$V -v D=$D -v F=$F -v L=$L -v N=$NEURONS -v t="$THREADS" -v pw="$pw" -v pc="$pc" \
    -v pcomp="$pcomp" -v prss="$prss" -v pws="$pws" -v p1="$p1" -v nw="$nw" -v nc="$nc" \
    -v nrss="$nrss" -v pk="$PEAK_WALL" -v pkc="$PEAK_CPU" -v runs="$PEAK_RUNS" \
    -v l0="$load_start" -v l1="$load_end" -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
    -v core="${OPENBLAS_CORETYPE:-unset}" -v np="$(cat "$nlog.out")" 'BEGIN {
    f = 2 * V * D * N / 1e9
    we = V * D * 4 / 1048576; w2 = L * D * F * 4 / 1048576
    printf "\n### probe values: %d neurons (GPT-2-medium shape), top 30 + bottom 30 each\n\n", N
    printf "%s, %s threads, OPENBLAS_CORETYPE=%s; load average %s at the start, %s at the end.\n", cpu, t, core, l0, l1
    printf "%.0f GFLOP in the products (2 x vocab x d x neurons).  sgemm peak = best of bench/values_peak (square 2048 and probe'"'"'s own 1024 x 1024 x 50257 product) before and after, in this run:%s GFLOP/s.\n\n", f, runs
    printf "| | wall s | GFLOP/s | %% of sgemm peak | CPU s | GFLOP per CPU-s | %% of per-CPU peak | peak RSS MB |\n"
    printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    printf "| sgemm peak (%d threads) | | %.1f | 100%% | | %.1f | 100%% | |\n", t, pk, pkc
    printf "| probe values (%d threads) | %.1f | %.1f | **%.0f%%** | %.1f | %.1f | %.0f%% | %.0f |\n", t, pw, f / pw, 100 * f / pw / pk, pc, f / pc, 100 * f / pc / pkc, prss
    if (p1 != "") { split(p1, a, " "); printf "| probe values (1 thread) | %.1f | %.1f | | %.1f | %.1f | %.0f%% | |\n", a[1], f / a[1], a[2], f / a[2], 100 * f / a[2] / pkc }
    printf "| numpy (W2.T @ E.T + argpartition) | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% | %.0f |\n", nw, f / nw, 100 * f / nw / pk, nc, f / nc, 100 * f / nc / pkc, nrss
    printf "\nprobe vs numpy: %.2fx faster (wall), %.2fx less CPU.  probe'"'"'s own timer (products and selection, no file I/O): %.1f s.\n", nw / pw, nc / pc, pcomp
    printf "probe peak RSS %.0f MB = weights it reads %.0f MB (E %.0f + 24 W2 %.0f, mmap of the 1.8 GB file) + working set %.0f MB (threads x block x vocab scores and blocks) + rest %.0f MB (results of one layer, HDF5, libraries).\n", prss, we + w2, we, w2, pws, prss - we - w2 - pws
    printf "numpy: %s\n", np
    printf "Targets: >= 70%% of the sgemm peak: %s; faster than numpy: %s.\n", (f / pw >= 0.7 * pk ? "met" : "NOT MET"), (pw < nw ? "met" : "NOT MET")
}'
