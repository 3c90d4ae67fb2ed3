#!/usr/bin/env bash
# Runs probe's main commands on stories260K (and a Hugging Face tokenizer,
# and a few broken inputs) under valgrind's memcheck: any invalid access or
# definitely/indirectly lost block fails.  Memory held by OpenBLAS' and
# OpenMP's worker threads at exit ("possibly lost", "still reachable") is
# theirs, not probe's, and is not counted; tests/valgrind.supp holds the one
# suppression (PCRE2's JIT code).
#   tests/valgrind.sh PROBE_BINARY   (make valgrind builds one valgrind can run:
#   -march=native code may use AVX-512, which valgrind does not know)
# Prints one line per command: seconds, and the heap summary.
set -u
probe=$(realpath "$1")
# probe re-executes itself to set OMP_WAIT_POLICY when it is unset (probe/main.c);
# valgrind does not follow an exec by default, so the policy is set here.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
S=${PROBE_SHARED:-../shared}
S=$(realpath "$S")
M=$S/models/stories260K
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PY=${PROBE_PY:-/usr/bin/python3}
$PY tests/hostile/make_hostile.py "$tmp/hostile" || exit 1
$PY tests/ref/make_hf_model.py --arch llama --out "$tmp/hf" --layers 2 --d 32 --heads 4 --vocab 97 \
  --ctx 32 || exit 1
for i in $(seq 6); do echo "Once upon a time there was a little girl named Lily. She liked to play."; done >"$tmp/corpus.txt"

MOD="--model $M/stories260K.bin --tokenizer $M/tok512.bin"
P="--prompt 'Once upon a time'"
# name | expected exit (0 or 1) | arguments
cases=(
  "info-bin|0|info $MOD"
  "info-gguf-q8|0|info --model $M/stories260K-q8_0.gguf"
  "info-hf|0|info --model $tmp/hf"
  "activations-h5|0|activations $MOD $P --layer all --top 3 --out $tmp/a.h5"
  "activations-csv|0|activations --model $M/stories260K-q4_0.gguf $P --out $tmp/a.csv"
  "generate|0|generate $MOD $P -n 24"
  "tokenize-tokbin|0|tokenize $MOD --text 'Hello, caf\u00e9 world' --bos"
  "tokenize-hf-bpe|0|tokenize --tokenizer $S/tokenizers/gpt2/tokenizer.json --text 'Hello world, 123!'"
  "tokenize-hf-spm|0|tokenize --tokenizer $S/tokenizers/llama2/tokenizer.json --text 'Hello world'"
  "values-h5|0|values $MOD --layer all --top 5 --bottom 2 --out $tmp/v.h5"
  "values-hf|0|values --model $tmp/hf --top 3 --out $tmp/vhf.csv"
  "values-promotes|0|values $MOD --promotes ' the' --top 5"
  "trace|0|trace $MOD $P --target-id 400 --ablate-top 3 --out $tmp/t.csv"
  "triggers-h5|0|triggers $MOD --corpus $tmp/corpus.txt --top 4 --quiet --out $tmp/g.h5"
  "triggers-csv|0|triggers $MOD --corpus $tmp/corpus.txt --per token --top 4 --quiet --out $tmp/g.csv"
  "bad-gguf|1|info --model $tmp/hostile/gguf_truncated_string.gguf"
  "bad-safetensors|1|info --model $tmp/hostile/st_offset_past_end"
  "bad-tokenizer|1|tokenize --tokenizer $tmp/hostile/tok_1mb_token.json --text hi"
  "bad-prompt|1|activations $MOD --prompt \"\$(printf 'ab\\377')\""
)
status=0
for c in "${cases[@]}"; do
  name=${c%%|*}
  rest=${c#*|}
  want=${rest%%|*}
  args=${rest#*|}
  log=$tmp/$name.vg
  t0=$(date +%s.%N)
  eval "valgrind --log-file=$log --suppressions=tests/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 $probe $args" >/dev/null 2>"$tmp/err"
  rc=$?
  t1=$(date +%s.%N)
  def=$(grep -o 'definitely lost: [0-9,]* bytes' "$log" | grep -o '[0-9,]* bytes' || echo "0 bytes")
  errs=$(grep -o 'ERROR SUMMARY: [0-9]*' "$log" | grep -o '[0-9]*$')
  line=$(printf '%-17s %6.1f s  exit %d  errors %s  definitely lost %s' "$name" \
    "$(echo "$t1 - $t0" | bc)" $rc "${errs:-?}" "$def")
  if [ "$rc" != "$want" ] || [ "${errs:-1}" != 0 ]; then
    echo "$line  FAILED (want exit $want); stderr: $(head -c 300 "$tmp/err")"
    grep -A 20 -m 3 'lost in loss record\|Invalid\|uninitialised' "$log" | head -60
    status=1
  else
    echo "$line  ok"
  fi
done
exit $status
