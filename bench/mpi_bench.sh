#!/usr/bin/env bash
# mpi_bench: `probe triggers` on 1 and 2 MPI ranks, and a projection to
# 100M tokens on GPT-2-medium with 1, 8 and 64 ranks.
#
#   PROBE_BIN=build/probe PROBE_SHARED=../shared PROBE_PY=/usr/bin/python3 BUILD=build \
#     bash bench/mpi_bench.sh
#
# 1. The same corpus through a random GPT-2-small-shaped model (bench/mkmodel,
#    as bench/triggers_bench.sh: a llama2.c checkpoint, d 768, ff 3072, 12
#    layers, vocab 50257) on one process and on `mpirun -np 2`, one thread
#    per rank (OMP_NUM_THREADS=1, --threads 1), so the comparison is ranks
#    against ranks, not ranks against threads.  tokens/s is rank 0's figure:
#    all corpus tokens over the wall time until the states are merged at rank
#    0.  Scaling efficiency = tokens/s(2 ranks) / (2 x tokens/s(1 rank)).
# 2. One rank, one thread, on a random GPT-2-medium-shaped model (d 1024,
#    ff 4096, 24 layers, 16 heads, vocab 50257; 1.8 GB, written once), the
#    options of the issue (--top 25, every layer): the per-core rate the
#    projection starts from.  The model is a Llama: SwiGLU has three FFN
#    matrices where GPT-2 has two, so per token it does 1.32x GPT-2-medium's
#    matrix FLOPs (797 vs 604 MFLOP); the projection uses the measured rate
#    as is (conservative) and also gives the rate scaled by that FLOP ratio.
# 3. Projection (arithmetic, printed with its assumptions): one rank per core;
#    wall(P) = 100e6 / (P x rate x eff) + merge(P) + agreement + writing, where
#    eff is the measured 2-rank efficiency (held constant: the ranks share
#    nothing while streaming), merge(P) = ceil(log2 P) tree rounds, each
#    moving one rank's packed state (heaps + statistics, from the sizes below)
#    over a NET_GBPS network plus merging it at MERGE_GBPS, and the agreement
#    (value projections of all 98,304 neurons at rank 0, 10.1 TFLOP) runs on
#    one core at 70% of its sgemm peak (measured here: bench/sgemm_peak; 70%
#    is probe values' target).  The runs themselves use --no-agreement: on a
#    small corpus the agreement would dominate their wall time.
#
# On a busy machine the wall-clock figures move with the load; the script
# also records CPU time (/usr/bin/time over the whole job, mpirun included)
# and projects from the CPU-time rate and efficiency when the wall-clock ones
# are not credible (it says so on stderr).
#
# Knobs (environment): MPI_BENCH_KB corpus for step 1 (default 48 kB, about
# 12k tokens), MPI_BENCH_MED_KB corpus for step 2 (default 6 kB), NET_GBPS
# (default 1.25 GB/s = 10 GbE), MERGE_GBPS (default 1 GB/s).  Output: key=value
# lines, then a short table.  Exit 1 if a run fails; skipped (exit 0, with a
# message) when mpirun or an MPI build of probe is missing.
set -euo pipefail

PROBE_BIN=${PROBE_BIN:-build/probe}
PROBE_SHARED=${PROBE_SHARED:-../shared}
PROBE_PY=${PROBE_PY:-/usr/bin/python3}
BUILD=${BUILD:-build}
KB=${MPI_BENCH_KB:-48}
MED_KB=${MPI_BENCH_MED_KB:-6}
NET_GBPS=${NET_GBPS:-1.25}
MERGE_GBPS=${MERGE_GBPS:-1.0}

D=$BUILD/bench
S=$PROBE_SHARED/models/stories260K
mkdir -p "$D"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpi_bench: skipped: mpirun is not installed (apt-get install openmpi-bin)" >&2
    exit 0
fi

# ---- inputs ----------------------------------------------------------------------

source "$(dirname "$0")/inputs.sh"
gen_corpus $(( KB * 1000 )) "$D/mpi_corpus_${KB}k.txt" 3
gen_corpus $(( MED_KB * 1000 )) "$D/mpi_corpus_med_${MED_KB}k.txt" 4

[ -x "$D/mkmodel" ] || make -s BUILD="$BUILD" "$D/mkmodel"
[ -x "$D/sgemm_peak" ] || make -s BUILD="$BUILD" "$D/sgemm_peak"
SMALL="$D/gpt2s-random.bin"
MED="$D/gpt2m-random.bin"
TOK="$D/tok512x50257.bin"
if [ ! -s "$SMALL" ]; then
    echo "mpi_bench: writing the GPT-2-small-shaped random model to $SMALL" >&2
    "$D/mkmodel" "$SMALL" 768 3072 12 12 12 50257 1024 >&2
fi
if [ ! -s "$MED" ]; then
    echo "mpi_bench: writing the GPT-2-medium-shaped random model (1.8 GB) to $MED" >&2
    "$D/mkmodel" "$MED" 1024 4096 24 16 16 50257 1024 >&2
fi
pad_tokenizer "$S/tok512.bin" "$TOK" 50257

# ---- runs ------------------------------------------------------------------------

# run RANKS MODEL CORPUS OUT: rank 0's stderr (the tokens_per_s line).
run() {
    local np=$1 model=$2 corpus=$3 out=$4
    local args=(triggers --model "$model" --tokenizer "$TOK" --corpus "$corpus" --layer all
                --top 25 --threads 1 --quiet --no-agreement --out "$out")
    local err launch=()
    [ "$np" = 1 ] || launch=(mpirun --oversubscribe -np "$np")
    err=$(/usr/bin/time -f "user_s=%U sys_s=%S" "${launch[@]}" "$PROBE_BIN" "${args[@]}" 2>&1 \
          >/dev/null) || { echo "$err" >&2; return 1; }
    if grep -q "built without MPI" <<<"$err"; then
        echo "mpi_bench: skipped: $PROBE_BIN was built without MPI" >&2
        exit 0
    fi
    echo "$err"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }

echo "mpi_bench: GPT-2-small-shaped model, $KB kB corpus, 1 rank" >&2
e1=$(run 1 "$SMALL" "$D/mpi_corpus_${KB}k.txt" "$D/mpi_out1.h5") || exit 1
echo "mpi_bench: the same on 2 ranks" >&2
e2=$(run 2 "$SMALL" "$D/mpi_corpus_${KB}k.txt" "$D/mpi_out2.h5") || exit 1
tps1=$(field tokens_per_s "$e1")
tps2=$(field tokens_per_s "$e2")
cpu1="$(field user_s "$e1") + $(field sys_s "$e1")"
cpu2="$(field user_s "$e2") + $(field sys_s "$e2")"
tokens=$(sed -n 's/.* documents, \([0-9]*\) tokens.*/\1/p' <<<"$e1" | head -1)
write_s=$(sed -n 's/.*writing \([0-9.]*\) s).*/\1/p' <<<"$e1" | head -1)
echo "mpi_bench: GPT-2-medium-shaped model, $MED_KB kB corpus, 1 rank" >&2
em=$(run 1 "$MED" "$D/mpi_corpus_med_${MED_KB}k.txt" "$D/mpi_outm.h5") || exit 1
tpsm=$(field tokens_per_s "$em")
cpum=$(field cpu_s "$em")
tokm=$(sed -n 's/.* documents, \([0-9]*\) tokens.*/\1/p' <<<"$em" | head -1)
rm -f "$D"/mpi_out*.h5
echo "mpi_bench: sgemm peak, 1 thread" >&2
peak=$("$D/sgemm_peak" 1 | sed -n 's/^sgemm_peak threads=1 gflops=\([0-9.]*\).*/\1/p')

"$PROBE_PY" - "$tps1" "$tps2" "$tokens" "$peak" "$write_s" "$tpsm" "$tokm" "$NET_GBPS" \
    "$MERGE_GBPS" "$cpu1" "$cpu2" "$cpum" "$(getconf _NPROCESSORS_ONLN)" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import math, sys
cpu1, cpu2 = (sum(map(float, a.split("+"))) for a in sys.argv[10:12])
tps1, tps2, tokens, peak1, write_s, tpsm, tokm, net, mrg, _, _, cpum = map(float, sys.argv[1:10] + ["0", "0"] + sys.argv[12:13])
nproc, load = sys.argv[13], sys.argv[14]
eff = tps2 / (2 * tps1)
# On a shared machine wall-clock rates move with the load; CPU time does not
# (much): the CPU efficiency is the share of the work that is not overhead
# of running two ranks (model loaded twice, MPI start-up, the merge).
eff_cpu = cpu1 / cpu2
print(f"mpi_small_tokens={tokens:.0f} mpi_small_tokens_per_s_1rank={tps1:.1f} "
      f"mpi_small_tokens_per_s_2ranks={tps2:.1f} mpi_scaling_efficiency={eff:.3f} "
      f"mpi_cpu_s_1rank={cpu1:.2f} mpi_cpu_s_2ranks={cpu2:.2f} mpi_cpu_efficiency={eff_cpu:.3f}")
print(f"mpi_medium_tokens={tokm:.0f} mpi_medium_tokens_per_s_1rank={tpsm:.1f} "
      f"mpi_medium_tokens_per_cpu_s={tokm / cpum:.1f} machine_nproc={nproc} loadavg={load}")
basis = "wall clock"
if float(load) > float(nproc) or tpsm < 0.8 * tokm / cpum:
    # A busy machine: each process gets a varying share of a core, so
    # wall-clock rates and their ratio measure the load, not probe.  The CPU
    # figures stand for what dedicated cores would do.
    print(f"mpi_bench: machine busy (load {load} on {nproc} cores): projecting from CPU time "
          f"({tokm / cpum:.1f} tokens per CPU-second, CPU efficiency {eff_cpu:.2f}) instead of "
          f"wall clock ({tpsm:.1f} tokens/s, efficiency {eff:.2f})", file=sys.stderr)
    tpsm, eff, basis = tokm / cpum, eff_cpu, "CPU time (busy machine)"
# Packed state of one rank for GPT-2 medium, --top 25 --context 32 (trg_pack):
# per neuron 25 entries of 48 + 4*32 bytes and a count; statistics 4 doubles,
# 2 floats, 1 int64 and 2 P^2 workspaces (104 B each) per neuron.
neurons = 24 * 4096
state = neurons * (25 * (48 + 4 * 32) + 4) + neurons * (4 * 8 + 2 * 4 + 8 + 2 * 104)
flop_med = 24 * 4096 * 1024 * 50257 * 2.0  # agreement: every value vector through E
agree_med = flop_med / (0.7 * peak1 * 1e9)  # one core at 70% of its sgemm peak
ratio = (4 * 1024**2 + 3 * 1024 * 4096) / (4 * 1024**2 + 2 * 1024 * 4096)
print(f"mpi_state_bytes_per_rank={state} sgemm_peak_gflops_1thread={peak1} "
      f"mpi_agreement_s_medium_est={agree_med:.0f} mpi_llama_vs_gpt2_flop_ratio={ratio:.3f}")
print()
print(f"probe triggers --layer all --top 25, 100M tokens, GPT-2-medium shape, one core per rank")
print(f"  measured ({basis}): {tpsm:.1f} tokens/s per core (random Llama-shaped model, "
      f"{tokm:.0f} tokens); 2-rank efficiency {eff:.2f}")
print(f"  assumed: efficiency stays {eff:.2f}; network {net} GB/s, merge {mrg} GB/s; "
      f"state {state / 1e6:.0f} MB per rank; agreement {agree_med:.0f} s at rank 0")
print(f"  {'ranks':>5} {'stream':>10} {'merge':>8} {'total':>10} {'total, GPT-2 FLOPs':>19}")
for p in (1, 8, 64):
    e = 1.0 if p == 1 else eff
    stream = 100e6 / (p * tpsm * e)
    rounds = math.ceil(math.log2(p)) if p > 1 else 0
    merge = rounds * (state / (net * 1e9) + state / (mrg * 1e9))
    total = stream + merge + agree_med + write_s
    total_g = stream / ratio + merge + agree_med + write_s
    print(f"  {p:>5} {stream / 3600:>9.1f}h {merge:>7.1f}s {total / 3600:>9.1f}h {total_g / 3600:>18.1f}h")
EOF
