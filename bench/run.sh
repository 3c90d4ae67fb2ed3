#!/usr/bin/env bash
# bench/run.sh — `make bench` (see bench/README.md).
#
# 1. Forward pass on a random-weight Llama (768 d, 12 layers, 2048 ff, 12
#    heads, 32000 vocab; ~438 MB, written once into $BUILD/bench/): this
#    machine's sgemm peak, fwd_eval over 128- and 512-token prompts with 1 and
#    2 threads, peak RSS of a separate 512-token run under /usr/bin/time -v,
#    a profile of the 512-token pass, then the peak and T=512 timing again
#    with OPENBLAS_CORETYPE unset and, when Debian's libopenblas0-openmp is
#    installed, with that OpenBLAS build swapped in (LD_LIBRARY_PATH).
# 2. GPT-2-small- and GPT-2-medium-shaped random Hugging Face folders
#    (tests/ref/make_hf_model.py, written once): tokens/s at T=128 and 512,
#    load time and peak RSS.
# 3. The other benchmarks, each standalone and printing its own table, when
#    present: bench/values_bench.sh, bench/triggers_bench.sh,
#    bench/mpi_bench.sh.  One failing is reported, not fatal to the rest.
#
# Raw key=value output stays in $BUILD/bench/results/; tables go to stdout.
# Exit status: non-zero when any step failed (after running all of them);
# missed targets are reported, not failures.  Knobs: BENCH_RUNS (timed runs
# per point, default 5), BENCH_SKIP="fwd variant gpt2 values triggers mpi"
# (any subset).
set -u -o pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PY=${PROBE_PY:-/usr/bin/python3}
export BUILD PROBE_BIN=${PROBE_BIN:-$BUILD/probe} PROBE_SHARED=${PROBE_SHARED:-../shared} PROBE_PY=$PY
B=$BUILD/bench
MODEL=$B/llama110m.bin
OUT=$B/results
RUNS=${BENCH_RUNS:-5}
SKIP=" ${BENCH_SKIP:-} "
OMP_LIB=/usr/lib/x86_64-linux-gnu/openblas-openmp
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

failed=()
step() { echo "bench: $*" >&2; }
# run NAME OUTFILE CMD...: runs CMD with stdout to OUTFILE; records a failure.
run() {
    local name=$1 out=$2
    shift 2
    if ! "$@" > "$out"; then
        echo "bench: FAILED: $name" >&2
        failed+=("$name")
        return 1
    fi
}
skipped() { [[ $SKIP == *" $1 "* ]]; }

for bin in mkmodel sgemm_peak fwd_bench; do
    [ -x "$B/$bin" ] || { echo "bench: $B/$bin is missing (run 'make bench')" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (Debian package 'time'; make deps)" >&2; exit 1; }

if [ ! -f "$MODEL" ]; then
    step "writing the random-weight model $MODEL"
    "$B/mkmodel" "$MODEL" 768 2048 12 12 12 32000 1024 || { echo "bench: mkmodel failed" >&2; exit 1; }
fi

echo "env cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" nproc=$(nproc)" \
     "loadavg_start=\"$(cut -d' ' -f1-3 /proc/loadavg)\" OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}" \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(unset)} date=\"$(date -u '+%Y-%m-%d %H:%M UTC')\"" \
     "openblas=\"$(readlink -f "$(ldd "$B/fwd_bench" | awk '/libopenblas/{print $3}')")\"" > "$OUT/env.txt"

# ---- 1. Forward pass, Llama-shaped ---------------------------------------------
if ! skipped fwd; then
    step "sgemm peak (1 and 2 threads)"
    run "sgemm_peak" "$OUT/sgemm.txt" "$B/sgemm_peak" 1 2

    step "forward pass, T = 128 and 512, 1 and 2 threads, $RUNS runs each"
    run "fwd_bench llama" "$OUT/fwd.txt" "$B/fwd_bench" "$MODEL" --threads 1,2 --tokens 128,512 --runs "$RUNS"

    # The peak again after the forward pass: the machine may be shared, and the
    # higher of the two measurements is the peak (report.py takes the max).
    run "sgemm_peak (again)" "$OUT/sgemm2.txt" "$B/sgemm_peak" 1 2

    step "peak RSS of a separate 512-token run (2 threads) under /usr/bin/time -v"
    run "fwd_bench --rss llama" "$OUT/rss.txt" /usr/bin/time -v -o "$OUT/rss_time.txt" \
        "$B/fwd_bench" "$MODEL" --rss --threads 2 --tokens 512

    step "profile of the 512-token pass"
    run "fwd_bench --profile" "$OUT/profile.txt" "$B/fwd_bench" "$MODEL" --profile --threads 1,2 --tokens 512 --runs 3

    step "again with OPENBLAS_CORETYPE unset (OpenBLAS picks its kernel by CPU detection)"
    run "sgemm_peak (OPENBLAS_CORETYPE unset)" "$OUT/sgemm_nocore.txt" env -u OPENBLAS_CORETYPE "$B/sgemm_peak" 1 2
    run "fwd_bench (OPENBLAS_CORETYPE unset)" "$OUT/fwd_nocore.txt" \
        env -u OPENBLAS_CORETYPE "$B/fwd_bench" "$MODEL" --threads 1,2 --tokens 512 --runs 3

    if ! skipped variant && [ -f "$OMP_LIB/libopenblas.so.0" ]; then
        # The same binary with Debian's OpenMP build of OpenBLAS loaded instead of
        # the linked one (same soname), interleaved with the default to share the
        # machine's load: the evidence for the choice of build (bench/README.md).
        step "OpenBLAS builds compared: default vs $OMP_LIB (T=512, 3 rounds)"
        for r in 1 2 3; do
            run "fwd_bench (default OpenBLAS, round $r)" "$OUT/variant_default_$r.txt" \
                "$B/fwd_bench" "$MODEL" --threads 1,2 --tokens 512 --runs 2
            run "fwd_bench (OpenMP OpenBLAS, round $r)" "$OUT/variant_openmp_$r.txt" \
                env LD_LIBRARY_PATH="$OMP_LIB" "$B/fwd_bench" "$MODEL" --threads 1,2 --tokens 512 --runs 2
        done
    fi
fi
echo "loadavg_fwd_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >> "$OUT/env.txt"

# ---- 2. GPT-2-shaped Hugging Face folders ---------------------------------------
if ! skipped gpt2; then
    for size in small medium; do
        dir=$B/gpt2-$size
        if [ ! -f "$dir/model.safetensors" ]; then
            step "writing the random-weight GPT-2-$size folder $dir (once; about a minute)"
            if [ $size = small ]; then
                args=(--arch gpt2 --layers 12 --d 768 --heads 12 --vocab 50257 --ctx 1024)
            else
                args=(--medium) # 24 layers, d 1024, 16 heads, n_inner 4096, vocab 50257
            fi
            rm -rf "$dir.tmp"
            if ! "$PY" tests/ref/make_hf_model.py "${args[@]}" --out "$dir.tmp" >&2; then
                echo "bench: FAILED: writing $dir" >&2
                failed+=("make_hf_model gpt2-$size")
                continue
            fi
            rm -rf "$dir" && mv "$dir.tmp" "$dir"
        fi
        step "GPT-2-$size: T = 128 and 512, 1 and 2 threads; then load time and peak RSS"
        # The RSS run comes first: a fresh process, so its first pass is the
        # one that faults the (page-cached) weights in.
        run "fwd_bench --rss gpt2-$size" "$OUT/gpt2_${size}_rss.txt" /usr/bin/time -v \
            -o "$OUT/gpt2_${size}_rss_time.txt" "$B/fwd_bench" "$dir" --rss --threads 2 --tokens 512
        run "fwd_bench gpt2-$size" "$OUT/gpt2_${size}_fwd.txt" \
            "$B/fwd_bench" "$dir" --threads 1,2 --tokens 128,512 --runs 3
    done
fi
echo "loadavg_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >> "$OUT/env.txt"

if skipped fwd && skipped gpt2; then
    :
elif ! "$PY" bench/report.py "$OUT"; then
    echo "bench: FAILED: report.py" >&2
    failed+=("report.py")
fi

# ---- 3. The other benchmarks ------------------------------------------------------
for name in values triggers mpi; do
    script=bench/${name}_bench.sh
    [ -f "$script" ] || continue
    if skipped "$name"; then
        echo; echo "## $script: skipped (BENCH_SKIP)"
        continue
    fi
    echo
    echo "## $script (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    step "running $script"
    # Its table streams to stdout (a copy stays in results/), its messages to stderr.
    bash "$script" | tee "$OUT/${name}_bench.txt"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "bench: FAILED: $script (exit $rc)"
        failed+=("$script (exit $rc)")
    fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: ${#failed[@]} step(s) FAILED:"
    printf '  - %s\n' "${failed[@]}"
    exit 1
fi
echo "bench: all steps ran (load average at the end $(cut -d' ' -f1-3 /proc/loadavg))"
