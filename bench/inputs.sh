# bench/inputs.sh: synthetic inputs shared by bench/triggers_bench.sh and
# bench/mpi_bench.sh.  Sourced, not run.  Needs PROBE_PY and PROBE_SHARED.

# gen_corpus BYTES OUT SEED: a plain-text corpus of at least BYTES bytes,
# documents of 150-450 words separated by blank lines, from a bigram walk over
# the stories260K greedy reference text.  Kept between runs; rewritten when
# smaller than asked for (a size knob changed).
gen_corpus() {
    [ -s "$2" ] && [ "$(stat -c %s "$2")" -ge "$1" ] && return 0
    echo "bench: writing a $(( $1 / 1000 )) kB corpus to $2" >&2
    "$PROBE_PY" - "$1" "$2.tmp" "$3" "$PROBE_SHARED/reference/stories260K/greedy.txt" <<'PY'
import random, sys
size, out, seed, ref = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rnd = random.Random(seed)
words = open(ref).read().split()
succ = {}
for a, b in zip(words, words[1:]):
    succ.setdefault(a, []).append(b)
w, n = rnd.choice(words), 0
with open(out, "w") as f:
    while n < size:
        doc = []
        for _ in range(rnd.randint(150, 450)):
            w = rnd.choice(succ.get(w, words)) if rnd.random() < 0.85 else rnd.choice(words)
            doc.append(w)
        s = " ".join(doc) + "\n\n"
        f.write(s)
        n += len(s)
PY
    mv "$2.tmp" "$2"
}

# pad_tokenizer SRC OUT VOCAB: a llama2.c tokenizer.bin padded to VOCAB
# entries with pieces that can never match text (bytes FF FE ...), so ids
# stay below the source's size: stories260K's tokenizer for a random model
# with a GPT-2-sized vocabulary.
pad_tokenizer() {
    [ -s "$2" ] && return 0
    "$PROBE_PY" - "$1" "$2.tmp" "$3" <<'PY'
import struct, sys
src, out, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf = open(src, "rb").read()
maxlen, off, toks = struct.unpack("<i", buf[:4])[0], 4, []
while off < len(buf):
    sc, n = struct.unpack("<fi", buf[off:off + 8])
    toks.append((sc, buf[off + 8:off + 8 + n]))
    off += 8 + n
parts = [struct.pack("<i", max(maxlen, 8))]
parts += [struct.pack("<fi", sc, len(p)) + p for sc, p in toks]
for i in range(len(toks), vocab):  # not UTF-8: never matches text, never merges
    p = b"\xff\xfe" + str(i).encode()
    parts.append(struct.pack("<fi", -1e9, len(p)) + p)
open(out, "wb").write(b"".join(parts))
PY
    mv "$2.tmp" "$2"
}
