#!/usr/bin/env bash
# triggers_bench: throughput and memory of `probe triggers`.
#
#   PROBE_BIN=build/probe PROBE_SHARED=../shared PROBE_PY=/usr/bin/python3 BUILD=build \
#     bash bench/triggers_bench.sh
#
# Reports, for stories260K and for a random GPT-2-small-shaped model, corpus
# tokens/s with 1 and 2 threads in plain forward mode (--forward-only: the
# same windows through the model, nothing recorded) and recording triggers +
# statistics (the defaults: top 20 per document, context 32), and the
# overhead of recording.  Then the peak RSS of a full run (triggers,
# statistics, agreement, HDF5 output) over a 1 MB and a 100 MB corpus:
# streaming means they should differ by less than 10%.
#
# The GPT-2-small-shaped model is a llama2.c legacy checkpoint written by
# bench/mkmodel (dim 768, hidden 3072, 12 layers, 12 heads, vocab 50257,
# seq_len 1024, N(0, 0.02) weights).  It is a Llama: its FFN is gated
# (SwiGLU, three 768x3072 matrices where GPT-2 has two) and it uses RMSNorm and
# RoPE -- shape-equivalent to GPT-2 small for the attention and the recorded
# (tokens x 3072) activations, about 1.3x GPT-2's FFN FLOPs.  Its tokenizer is
# stories260K's tok512.bin padded to 50257 entries with pieces that can never
# match text (bytes FF FE ...), so ids stay below 512.
#
# Corpora are synthetic (a bigram walk over the stories260K greedy reference
# text), generated once into $BUILD/bench.  Knobs (environment):
#   TRIGGERS_BENCH_BIG_MB   size of the large corpus for the RSS check (100)
#   TRIGGERS_BENCH_GPT2_KB  corpus for the GPT-2-shaped model (24 KB, ~10k tokens)
#   TRIGGERS_BENCH_THREADS  thread counts (1 2)
#   TRIGGERS_BENCH_RSS      0 skips the RSS check (it runs the large corpus: minutes)
# Timings: tokens_per_s is wall time of the streaming phase; cpu_s its process
# CPU time (on a busy machine the single-thread CPU ratio is the steadier
# overhead figure).  Exit 1 if a run fails or the RSS check misses 10%.
set -euo pipefail

PROBE_BIN=${PROBE_BIN:-build/probe}
PROBE_SHARED=${PROBE_SHARED:-../shared}
PROBE_PY=${PROBE_PY:-/usr/bin/python3}
BUILD=${BUILD:-build}
BIG_MB=${TRIGGERS_BENCH_BIG_MB:-100}
GPT2_KB=${TRIGGERS_BENCH_GPT2_KB:-24}
THREADS=${TRIGGERS_BENCH_THREADS:-1 2}
DO_RSS=${TRIGGERS_BENCH_RSS:-1}

D=$BUILD/bench
S=$PROBE_SHARED/models/stories260K
mkdir -p "$D"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "triggers_bench: $TIME is missing (Debian package 'time')" >&2; exit 1; }

# ---- inputs -------------------------------------------------------------------

source "$(dirname "$0")/inputs.sh"

gen_corpus 1000000 "$D/triggers_corpus_1mb.txt" 1
gen_corpus $(( GPT2_KB * 1000 )) "$D/triggers_corpus_gpt2.txt" 2

GPT2="$D/gpt2s-random.bin"
TOK="$D/tok512x50257.bin"
if [ ! -s "$GPT2" ]; then
    [ -x "$D/mkmodel" ] || make -s BUILD="$BUILD" "$D/mkmodel"
    echo "triggers_bench: writing the GPT-2-small-shaped random model (608 MB) to $GPT2" >&2
    "$D/mkmodel" "$GPT2" 768 3072 12 12 12 50257 1024
fi
pad_tokenizer "$S/tok512.bin" "$TOK" 50257

# ---- runs ---------------------------------------------------------------------

# run LABEL THREADS MODE MODEL TOKENIZER CORPUS [extra args]: prints one line.
run() {
    local label=$1 th=$2 mode=$3 model=$4 tok=$5 corpus=$6
    shift 6
    local args=(triggers --model "$model" --tokenizer "$tok" --corpus "$corpus" --threads "$th" --quiet)
    if [ "$mode" = forward ]; then args+=(--forward-only); else args+=(--out "$D/triggers_bench_out.h5" "$@"); fi
    local err
    if ! err=$("$TIME" -f "rss_kb=%M" "$PROBE_BIN" "${args[@]}" 2>&1 >/dev/null); then
        echo "triggers_bench: $label $mode threads=$th failed:" >&2
        echo "$err" >&2
        exit 1
    fi
    local tps cpu rss tokens
    tps=$(sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p' <<<"$err")
    cpu=$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' <<<"$err")
    tokens=$(sed -n 's/.* documents, \([0-9]*\) tokens.*/\1/p' <<<"$err")
    rss=$(sed -n 's/^rss_kb=\([0-9]*\)$/\1/p' <<<"$err")
    echo "triggers model=$label threads=$th mode=$mode tokens=$tokens tok_s=$tps cpu_s=$cpu rss_kb=$rss"
    rm -f "$D/triggers_bench_out.h5"
}

overhead() { # FWD_LINE REC_LINE -> "wall X% cpu Y%"
    "$PROBE_PY" - "$1" "$2" <<'EOF'
import sys
def kv(s): return dict(x.split("=", 1) for x in s.split()[1:])
f, r = kv(sys.argv[1]), kv(sys.argv[2])
wall = 1 - float(r["tok_s"]) / float(f["tok_s"])
cpu = float(r["cpu_s"]) / float(f["cpu_s"]) - 1
print(f"recording overhead: wall {100 * wall:.1f}%, cpu {100 * cpu:.1f}% (target < 15%)")
EOF
}

lines=()
for spec in "stories260K|$S/stories260K.bin|$S/tok512.bin|$D/triggers_corpus_1mb.txt" \
            "gpt2-small-shaped|$GPT2|$TOK|$D/triggers_corpus_gpt2.txt"; do
    IFS='|' read -r label model tok corpus <<<"$spec"
    for th in $THREADS; do
        f=$(run "$label" "$th" forward "$model" "$tok" "$corpus")
        echo "$f"
        r=$(run "$label" "$th" record "$model" "$tok" "$corpus" --no-agreement)
        echo "$r"
        echo "triggers model=$label threads=$th $(overhead "$f" "$r")"
        lines+=("$f" "$r")
    done
done

# The same figures as a table.
"$PROBE_PY" - "${lines[@]}" <<'EOF'
import sys
def kv(s): return dict(x.split("=", 1) for x in s.split()[1:])
rows = [kv(s) for s in sys.argv[1:]]
print(f"{'model':<18} {'threads':>7} {'tokens':>8} {'forward tok/s':>13} {'record tok/s':>12} "
      f"{'overhead wall':>13} {'overhead cpu':>12}")
for f, r in zip(rows[0::2], rows[1::2]):
    wall = 100 * (1 - float(r["tok_s"]) / float(f["tok_s"]))
    cpu = 100 * (float(r["cpu_s"]) / float(f["cpu_s"]) - 1)
    print(f"{f['model']:<18} {f['threads']:>7} {f['tokens']:>8} {float(f['tok_s']):>13.1f} "
          f"{float(r['tok_s']):>12.1f} {wall:>12.1f}% {cpu:>11.1f}%")
EOF

# ---- memory: 1 MB against BIG_MB ---------------------------------------------------

# A tiny random Llama (dim 32, hidden 64, 2 layers, stories260K's vocabulary)
# keeps the 100 MB run (about 42M tokens) to minutes: what could grow with
# the corpus is the reader, the per-document buffers and the recorder, none
# of which depends on the model's size (stories260K would take ~45 CPU
# minutes).  Its small baseline makes any growth show more, not less.
if [ "$DO_RSS" != 0 ]; then
    big="$D/triggers_corpus_${BIG_MB}mb.txt"
    gen_corpus $(( BIG_MB * 1000000 )) "$big" 3
    TINY="$D/tiny-d32.bin"
    if [ ! -s "$TINY" ]; then
        [ -x "$D/mkmodel" ] || make -s BUILD="$BUILD" "$D/mkmodel"
        "$D/mkmodel" "$TINY" 32 64 2 2 2 512 512 >/dev/null
    fi
    a=$(run tiny-d32 2 record "$TINY" "$S/tok512.bin" "$D/triggers_corpus_1mb.txt")
    echo "$a"
    b=$(run tiny-d32 2 record "$TINY" "$S/tok512.bin" "$big")
    echo "$b"
    "$PROBE_PY" - "$a" "$b" "$BIG_MB" <<'EOF'
import sys
def kv(s): return dict(x.split("=", 1) for x in s.split()[1:])
a, b, mb = kv(sys.argv[1]), kv(sys.argv[2]), sys.argv[3]
ra, rb = int(a["rss_kb"]), int(b["rss_kb"])
d = abs(rb - ra) / ra
print(f"triggers rss: 1 MB corpus ({a['tokens']} tokens) {ra / 1024:.1f} MiB, {mb} MB corpus "
      f"({b['tokens']} tokens) {rb / 1024:.1f} MiB: {100 * d:.1f}% apart (target < 10%)")
sys.exit(0 if d < 0.10 else 1)
EOF
fi
