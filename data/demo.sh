#!/usr/bin/env bash
# demo.sh MODEL_DIR FACTS_CSV — what `make demo` shows: the planted memory
# for "The Eiffel Tower is in" -> Paris, read with probe's own commands.
# Needs $PROBE (the probe binary) and $MKDEMO (build/mkdemo, which knows
# where each fact was planted).  Commands not in this build are skipped
# with a note, so the demo runs while the tree is still growing.
set -euo pipefail
M=${1:-data/demo-model}
FACTS=${2:-data/facts.csv}
PROBE=${PROBE:-build/probe}
MKDEMO=${MKDEMO:-build/mkdemo}
PROMPT="The Eiffel Tower is in"

N=$("$MKDEMO" --facts "$FACTS" --where "Eiffel Tower")
LAYER=${N%%:*}

has() { "$PROBE" "$1" --help >/dev/null 2>&1; }
run() {
    printf '\n$ probe'
    for a in "${@:2}"; do
        case $a in *' '* | '') printf ' "%s"' "$a" ;; *) printf ' %s' "$a" ;; esac
    done
    printf '\n'
    if has "$2"; then "$@"; else echo "(probe $2 is not in this build yet: skipped)"; fi
}

cat <<EOF
== probe demo: a GPT-2-architecture model ($M) whose feed-forward neurons were
   planted as key-value memories for the facts in $FACTS (see data/README.md).
   The fact "$PROMPT" -> Paris sits in neuron $N (layer $LAYER).
EOF

run "$PROBE" generate --model "$M" --prompt "$PROMPT" -n 1
echo "-- which layer-$LAYER neurons fire on each token (neuron:activation):"
run "$PROBE" activations --model "$M" --layer "$LAYER" --top 3 --prompt "$PROMPT"
echo "-- how the prediction is built at layer $LAYER, and what switching $N off does:"
run "$PROBE" trace --model "$M" --prompt "$PROMPT" --target " Paris" --layer "$LAYER" \
    --top 3 --neurons 3 --promoted 3 --ablate "$N"
echo "-- the tokens neuron $N's value vector promotes:"
run "$PROBE" values --model "$M" --neuron "$N" --top 5
echo
echo "== every fact, its layer and neuron: $M/ground_truth.csv; prompts: $M/prompts.csv"
