#!/usr/bin/env bash
# bench/run.sh — `make bench`: the forward-pass benchmark (see bench/README.md).
#
# Writes a random-weight Llama (768 d, 12 layers, 2048 ff, 12 heads, 32000
# vocab; ~438 MB) once into $BUILD/bench/, measures this machine's sgemm peak,
# times fwd_eval over 128- and 512-token prompts with 1 and 2 threads, takes
# the peak RSS of a separate 512-token run under /usr/bin/time -v, profiles
# the 512-token pass, and repeats peak + 512-token timing with
# OPENBLAS_CORETYPE unset.  Raw key=value output stays in
# $BUILD/bench/results/; the table goes to stdout.
#
# Exit status: non-zero only when a step fails (a binary errors or crashes);
# missed targets are reported, not fatal.
set -u -o pipefail

BUILD=${BUILD:-build}
PY=${PROBE_PY:-/usr/bin/python3}
B=$BUILD/bench
MODEL=$B/llama110m.bin
OUT=$B/results
RUNS=${BENCH_RUNS:-5}
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

fail() { echo "bench: $*" >&2; exit 1; }
step() { echo "bench: $*" >&2; }

for bin in mkmodel sgemm_peak fwd_bench; do
    [ -x "$B/$bin" ] || fail "$B/$bin is missing (run 'make bench')"
done
[ -x /usr/bin/time ] || fail "/usr/bin/time is missing (Debian package 'time'; make deps)"

if [ ! -f "$MODEL" ]; then
    step "writing the random-weight model $MODEL"
    "$B/mkmodel" "$MODEL" 768 2048 12 12 12 32000 1024 || fail "mkmodel failed"
fi

{
    echo "env cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" nproc=$(nproc)" \
         "loadavg_start=\"$(cut -d' ' -f1-3 /proc/loadavg)\" OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}" \
         "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset)}"
} > "$OUT/env.txt"

step "sgemm peak (1 and 2 threads)"
"$B/sgemm_peak" 1 2 > "$OUT/sgemm.txt" || fail "sgemm_peak failed"

step "forward pass, T = 128 and 512, 1 and 2 threads, $RUNS runs each"
"$B/fwd_bench" "$MODEL" --threads 1,2 --tokens 128,512 --runs "$RUNS" > "$OUT/fwd.txt" \
    || fail "fwd_bench failed"

step "peak RSS of a separate 512-token run (2 threads) under /usr/bin/time -v"
/usr/bin/time -v "$B/fwd_bench" "$MODEL" --rss --threads 2 --tokens 512 > "$OUT/rss.txt" \
    2> "$OUT/rss_time.txt" || fail "fwd_bench --rss failed: $(tail -3 "$OUT/rss_time.txt")"

step "profile of the 512-token pass"
"$B/fwd_bench" "$MODEL" --profile --threads 1,2 --tokens 512 --runs 3 > "$OUT/profile.txt" \
    || fail "fwd_bench --profile failed"

step "again with OPENBLAS_CORETYPE unset (OpenBLAS picks its kernel by CPU detection)"
env -u OPENBLAS_CORETYPE "$B/sgemm_peak" 1 2 > "$OUT/sgemm_nocore.txt" \
    || fail "sgemm_peak (OPENBLAS_CORETYPE unset) failed"
env -u OPENBLAS_CORETYPE "$B/fwd_bench" "$MODEL" --threads 1,2 --tokens 512 --runs 3 \
    > "$OUT/fwd_nocore.txt" || fail "fwd_bench (OPENBLAS_CORETYPE unset) failed"

echo "loadavg_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >> "$OUT/env.txt"
"$PY" bench/report.py "$OUT" || fail "report.py failed"
