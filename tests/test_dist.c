/* MPI runs (analysis/dist) against single-process runs of the same job:
 * `mpirun -np 2|3 probe triggers|values` must write the same files — same
 * ids, same order, activations and scores bit-equal, statistics to 1e-6
 * relative (tests/ref/compare_h5.py reads both with h5py).  The running
 * quantiles are the documented exception: P^2 estimators cannot be merged
 * exactly, so they are only checked for shape.  Also: the corpus split at
 * document boundaries of every format, and a rank that fails ends the job
 * with a message naming it and no output file.
 *
 * Skipped, with a message, when mpirun is not installed or probe was built
 * without MPI (`make MPICC=`). */
#include "tutil.h"

#include "analysis/corpus.h"
#include "analysis/dist.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M260 "models/stories260K/"
#define CMP "tests/ref/compare_h5.py"
/* Open MPI refuses root without these; leaks inside libmpi are not ours. */
#define MPIRUN                                                                                     \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "                                   \
    "OMPI_MCA_rmaps_base_oversubscribe=1 "                                                         \
    "ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" mpirun --oversubscribe -np"

static char *model_args(void) {
    static _Thread_local char b[8192];
    snprintf(b, sizeof b, "--model %s --tokenizer %s", tu_sharedp(M260 "stories260K.bin"),
             tu_sharedp(M260 "tok512.bin"));
    return b;
}

static void need_mpi(void) {
    if (!dist_have_mpi()) cr_skip_test("probe was built without MPI (no mpicc): MPI tests skipped");
    if (tu_run("command -v mpirun >/dev/null 2>&1", NULL, NULL) != 0)
        cr_skip_test("mpirun is not installed (apt-get install openmpi-bin): MPI tests skipped");
}

/* A corpus of N_DOCS documents of varying length (a few spanning several
 * lines, some with blank lines of spaces or CRLF endings between them). */
static void write_corpus(const char *path, int n_docs, int jsonl, uint64_t seed) {
    static const char *w[] = {"Once", "upon",  "a",       "time", "there", "was",  "little",
                              "girl", "named", "Lily",    "she",  "liked", "to",   "play",
                              "with", "her",   "ball",    "in",   "the",   "park", "One",
                              "day",  "saw",   "big",     "dog",  "and",   "ran",  "happy",
                              "sun",  "tree",  "\"Hi,\"", "said", "Tom."};
    FILE *f = fopen(path, "w");
    cr_assert(f);
    uint64_t x = seed;
    for (int d = 0; d < n_docs; d++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int n = 3 + (int)((x >> 33) % 60);
        if (jsonl) fputs("{\"text\": \"", f);
        for (int k = 0; k < n; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const char *s = w[(x >> 35) % (sizeof w / sizeof *w)];
            if (jsonl && s[0] == '"') s = "Hi,";
            fprintf(f, "%s%s", k ? (!jsonl && k % 17 == 0 ? "\n" : " ") : "", s);
        }
        if (jsonl)
            fputs("\"}\n", f);
        else
            fputs(d % 5 == 0 ? "\r\n \t\r\n" : d % 7 == 0 ? "\n\n\n" : "\n\n", f);
    }
    fclose(f);
}

static void compare(const char *a, const char *b, const char *extra) {
    char *out = NULL;
    int rc = tu_runf(&out, NULL, "%s %s %s %s --skip-attr command %s", tu_py(), CMP, a, b, extra);
    cr_log_info("%s", out ? out : "");
    cr_assert_eq(rc, 0, "%s and %s differ:\n%s", a, b, out ? out : "");
    free(out);
}

static void same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = tu_slurp(a, &na), *y = tu_slurp(b, &nb);
    cr_assert(x && y, "missing %s or %s", a, b);
    cr_assert(na == nb && !memcmp(x, y, na), "%s and %s differ", a, b);
    cr_assert_gt(na, 100);
    free(x);
    free(y);
}

#define STATS_REL                                                                                  \
    "--rel 'stats/(mean|variance|skewness|kurtosis|density)$' --skip 'stats/quantiles$'"

Test(dist, triggers_h5_np2, .timeout = 120) {
    need_mpi();
    char *dir = tu_tmpdir();
    char corpus[512], a[512], b[512];
    snprintf(corpus, sizeof corpus, "%s/c.txt", dir);
    write_corpus(corpus, 120, 0, 7);
    snprintf(a, sizeof a, "%s/one.h5", dir);
    snprintf(b, sizeof b, "%s/two.h5", dir);
    const char *opts = "--layer all --top 12 --context 8 --threads 1 --quiet";
    char *err = NULL;
    int rc = tu_runf(NULL, &err, "%s triggers %s --corpus %s %s --out %s", tu_bin(), model_args(),
                     corpus, opts, a);
    cr_assert_eq(rc, 0, "single process: %s", err);
    free(err);
    rc = tu_runf(NULL, &err, MPIRUN " 2 %s triggers %s --corpus %s %s --out %s", tu_bin(),
                 model_args(), corpus, opts, b);
    cr_assert_eq(rc, 0, "mpirun -np 2: %s", err);
    free(err);
    compare(a, b, STATS_REL);
    cr_assert(tu_no_temp_files(dir));
    free(dir);
}

/* JSON Lines, per-token triggers ranked by pre-activation, 3 ranks (an
 * uneven split): the tidy CSV files are byte-identical. */
Test(dist, triggers_csv_jsonl_np3, .timeout = 120) {
    need_mpi();
    char *dir = tu_tmpdir();
    char corpus[512];
    snprintf(corpus, sizeof corpus, "%s/c.jsonl", dir);
    write_corpus(corpus, 90, 1, 11);
    const char *opts =
        "--layer 1,3 --top 6 --per token --rank-by pre --no-stats --threads 1 --quiet";
    char *err = NULL;
    int rc = tu_runf(NULL, &err, "%s triggers %s --corpus %s %s --out %s/one.csv", tu_bin(),
                     model_args(), corpus, opts, dir);
    cr_assert_eq(rc, 0, "single process: %s", err);
    free(err);
    rc = tu_runf(NULL, &err, MPIRUN " 3 %s triggers %s --corpus %s %s --out %s/three.csv", tu_bin(),
                 model_args(), corpus, opts, dir);
    cr_assert_eq(rc, 0, "mpirun -np 3: %s", err);
    free(err);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/one.csv", dir);
    snprintf(b, sizeof b, "%s/three.csv", dir);
    same_file(a, b);
    snprintf(a, sizeof a, "%s/one.agreement.csv", dir);
    snprintf(b, sizeof b, "%s/three.agreement.csv", dir);
    same_file(a, b);
    free(dir);
}

Test(dist, values_h5_np2, .timeout = 120) {
    need_mpi();
    char *dir = tu_tmpdir();
    /* --block 64: several blocks per layer, so both ranks get neurons. */
    const char *opts = "--layer all --top 9 --bottom 4 --softmax --block 64 --threads 1";
    char *err = NULL;
    int rc =
        tu_runf(NULL, &err, "%s values %s %s --out %s/one.h5", tu_bin(), model_args(), opts, dir);
    cr_assert_eq(rc, 0, "single process: %s", err);
    free(err);
    rc = tu_runf(NULL, &err, MPIRUN " 2 %s values %s %s --out %s/two.h5", tu_bin(), model_args(),
                 opts, dir);
    cr_assert_eq(rc, 0, "mpirun -np 2: %s", err);
    free(err);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/one.h5", dir);
    snprintf(b, sizeof b, "%s/two.h5", dir);
    compare(a, b, ""); /* everything bit for bit */
    /* Reverse search and a neuron list in a chosen order, as tables. */
    char *o1 = NULL, *o2 = NULL;
    const char *q = "--neuron 4:100 --neuron 0:3 --neuron 4:7 --promotes ' the' --threads 1";
    cr_assert_eq(tu_runf(&o1, NULL, "%s values %s %s", tu_bin(), model_args(), q), 0);
    cr_assert_eq(tu_runf(&o2, NULL, MPIRUN " 2 %s values %s %s", tu_bin(), model_args(), q), 0);
    cr_assert_str_eq(o1, o2);
    cr_assert_gt(tu_lines(o1), 3);
    free(o1);
    free(o2);
    free(dir);
}

/* A document too long for --max-tokens near the end of the corpus fails on
 * the last rank only: the job stops, naming that rank and the cause, and
 * leaves no output and no temporary. */
Test(dist, failing_rank, .timeout = 120) {
    need_mpi();
    char *dir = tu_tmpdir();
    char corpus[512];
    snprintf(corpus, sizeof corpus, "%s/c.txt", dir);
    write_corpus(corpus, 60, 0, 3);
    FILE *f = fopen(corpus, "a");
    for (int i = 0; i < 600; i++)
        fputs("word ", f);
    fputs("\n\nThe end.\n", f);
    fclose(f);
    char *err = NULL;
    int rc = tu_runf(NULL, &err,
                     MPIRUN " 2 %s triggers %s --corpus %s --max-tokens 400 --top 3 "
                            "--threads 1 --quiet --out %s/t.h5",
                     tu_bin(), model_args(), corpus, dir);
    cr_log_info("%s", err);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err, "rank 1 of 2"), "no message from rank 1: %s", err);
    cr_assert(strstr(err, "stopping: rank 1 failed"), "rank 0 does not name rank 1: %s", err);
    char p[600];
    snprintf(p, sizeof p, "%s/t.h5", dir);
    cr_assert(!tu_exists(p), "output written despite the failure");
    cr_assert(tu_no_temp_files(dir));
    free(err);
    free(dir);
}

/* The split points: ranges cut at corpus_boundary() read, together, exactly
 * the documents of the whole file, with the same ids after the shift. */
static void check_split(const char *path, corpus_fmt_t fmt, int parts) {
    corpus_t *all = corpus_open(path, fmt, 64);
    cr_assert(all);
    uint64_t size = corpus_stats(all)->size;
    const char *t;
    size_t len;
    int64_t id, base = 0;
    for (int p = 0; p < parts; p++) {
        uint64_t b0, b1;
        cr_assert_eq(corpus_boundary(path, fmt, 64, size * p / parts, &b0), 0);
        cr_assert_eq(corpus_boundary(path, fmt, 64, size * (p + 1) / parts, &b1), 0);
        cr_assert_leq(b0, b1);
        corpus_t *c = corpus_open(path, fmt, 64);
        cr_assert(c && corpus_set_range(c, b0, b1) == 0);
        for (;;) {
            int k = corpus_next(c, &t, &len, &id);
            cr_assert_geq(k, 0);
            if (k == 0) break;
            char *mine = strndup(t, len);
            int64_t gid;
            cr_assert_eq(corpus_next(all, &t, &len, &gid), 1, "part %d has an extra document", p);
            cr_assert_eq(base + id, gid, "part %d: id %lld + %lld, whole file %lld", p,
                         (long long)base, (long long)id, (long long)gid);
            cr_assert(strlen(mine) == len && !memcmp(mine, t, len), "document %lld differs",
                      (long long)gid);
            free(mine);
        }
        base += corpus_stats(c)->ids;
        corpus_close(c);
    }
    cr_assert_eq(corpus_next(all, &t, &len, &id), 0, "documents missing from the parts");
    corpus_close(all);
}

Test(dist, corpus_split) {
    char *dir = tu_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/c.txt", dir);
    write_corpus(p, 200, 0, 5);
    /* A long document (cut into pieces by MAX_DOC 64) and a long blank line. */
    FILE *f = fopen(p, "a");
    fputs("aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp\n"
          "second line of it\n\n",
          f);
    for (int i = 0; i < 100; i++)
        fputc(' ', f);
    fputs("\nafter a long blank line\n\nlast\n", f);
    fclose(f);
    for (int parts = 1; parts <= 13; parts += 3) {
        check_split(p, CORPUS_TEXT, parts);
        check_split(p, CORPUS_LINES, parts);
    }
    snprintf(p, sizeof p, "%s/c.jsonl", dir);
    write_corpus(p, 150, 1, 9);
    f = fopen(p, "a");
    fputs("\n{\"no\": 1}\nnot json\n{\"text\": \"", f);
    for (int i = 0; i < 80; i++)
        fputc('x', f); /* longer than MAX_DOC: skipped */
    fputs("\"}\n{\"text\": \"end\"}\n", f);
    fclose(f);
    for (int parts = 1; parts <= 13; parts += 3)
        check_split(p, CORPUS_JSONL, parts);
    free(dir);
}
