/* fuzz: what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * probe's loaders take paths and map files, so each input is written to a
 * file in a private temporary folder (under /dev/shm when there is one) and
 * the loader is called on it.  Beyond "no crash, no sanitizer report, no
 * leak", the harnesses check what the sanitizers cannot see: every tensor
 * view a loader hands out lies inside its mapping (an overread of a mapping
 * that stays within its last page is invisible to ASan), and every token id
 * an encoder returns is inside the vocabulary.  A broken invariant aborts
 * with a message, which libFuzzer reports as a crash. */
#ifndef PROBE_FUZZ_H
#define PROBE_FUZZ_H

#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"
#include "core/tok.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_FAIL(...)                                                                     \
    do {                                                                                 \
        fprintf(stderr, "fuzz invariant broken at %s:%d: ", __FILE__, __LINE__);         \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fputc('\n', stderr);                                                             \
        abort();                                                                         \
    } while (0)

/* With FUZZ_VERBOSE set, says whether each input loaded (and why not). */
static inline void fz_note(const char *what, const void *ok) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, ok ? "loaded" : err_msg());
}

static char fz_dir_buf[256];

static inline void fz_cleanup(void) {
    DIR *d = opendir(fz_dir_buf);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", fz_dir_buf, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(fz_dir_buf);
}

/* The private folder inputs are written to (created on first use, removed at exit). */
static inline const char *fz_dir(void) {
    if (!fz_dir_buf[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(fz_dir_buf, sizeof fz_dir_buf, "%s/probe-fuzz-XXXXXX", base);
        if (!mkdtemp(fz_dir_buf)) FZ_FAIL("cannot create a temporary folder under %s", base);
        atexit(fz_cleanup);
    }
    return fz_dir_buf;
}

/* Writes DATA to fz_dir()/NAME; the path goes into OUT (CAP bytes). */
static inline const char *fz_write(const char *name, const uint8_t *data, size_t size, char *out,
                            size_t cap) {
    snprintf(out, cap, "%s/%s", fz_dir(), name);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) FZ_FAIL("cannot write %s", out);
    for (size_t k = 0; k < size;) {
        ssize_t w = write(fd, data + k, size - k);
        if (w <= 0) FZ_FAIL("short write to %s", out);
        k += (size_t)w;
    }
    close(fd);
    return out;
}

/* Tensor T's bytes must lie in [BASE, BASE + SIZE). */
static inline int fz_inside(const tensor_t *t, const uint8_t *base, size_t size) {
    const uint8_t *p = t->data;
    return base && p >= base && t->nbytes <= size && (size_t)(p - base) <= size - t->nbytes;
}

/* The tensor's size agrees with its shape, and every row dequantises (reads all bytes). */
static inline void fz_touch_tensor(const tensor_t *t) {
    uint64_t want = tensor_bytes_for(t->dtype, t->ndim, t->shape);
    if (want != t->nbytes) FZ_FAIL("tensor '%s': %llu bytes for its shape, view has %llu", t->name,
                                   (unsigned long long)want, (unsigned long long)t->nbytes);
    int64_t cols = tensor_cols(t), rows = tensor_rows(t);
    if (cols > (1 << 20)) return;
    float *row = malloc((size_t)cols * sizeof *row);
    if (!row) return;
    volatile float sink = 0;
    for (int64_t r = 0; r < rows && r < 4096; r++) {
        tensor_get_rows(t, r, 1, row);
        sink += row[0] + row[cols - 1];
    }
    (void)sink;
    free(row);
}

/* Every token id in range; every piece readable and displayable. */
static inline void fz_check_ids(const tok_t *t, const int *ids, int n) {
    char buf[64];
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            FZ_FAIL("token id %d outside the vocabulary of %d", ids[i], t->n_vocab);
        int len;
        tok_decode_next(t, i ? ids[i - 1] : -1, ids[i], &len);
        tok_display(t, ids[i], buf, sizeof buf);
    }
}

/* Encodes a few fixed texts with every flag combination. */
static inline void fz_exercise_tok(const tok_t *t) {
    static const char *texts[] = {"", "a", "Hello world", " 12 ab\n\tcd  ", "<s></s><unk>",
                                  "<|endoftext|>x", "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80",
                                  "\xe2\x96\x81\xe2\x96\x81 x"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++)
        for (int flags = 0; flags < 4; flags++) {
            int *ids = NULL, n = 0;
            if (tok_encode(t, texts[k], strlen(texts[k]), flags, &ids, &n) == 0)
                fz_check_ids(t, ids, n);
            free(ids);
        }
    char buf[64];
    for (int id = 0; id < t->n_vocab && id < 4096; id++) tok_display(t, id, buf, sizeof buf);
    tok_lookup_text(t, "a");
}

/* A loaded model: every bound tensor lies inside one of the model's files
 * (or a loader-owned buffer), and a two-token forward pass runs. */
static inline void fz_exercise_model(const model_t *m, const uint8_t *const *extra_base,
                              const size_t *extra_size, int n_extra) {
    for (int i = 0; i < m->tensors.n; i++) {
        const tensor_t *t = &m->tensors.items[i];
        int ok = 0;
        for (int f = 0; f < m->n_files && !ok; f++)
            ok = fz_inside(t, m->files[f]->data, m->files[f]->size);
        for (int f = 0; f < n_extra && !ok; f++) ok = fz_inside(t, extra_base[f], extra_size[f]);
        if (!ok) FZ_FAIL("tensor '%s' (%llu bytes) is not inside any mapping", t->name,
                         (unsigned long long)t->nbytes);
    }
    mparams_t p;
    model_param_counts(m, &p);
    if ((int64_t)m->cfg.vocab * m->cfg.d_model > (1 << 22)) return; /* keep executions fast */
    int ctx = m->cfg.max_seq < 4 ? m->cfg.max_seq : 4;
    fwd_t *f = fwd_new(m, ctx, ctx);
    if (!f) return;
    float *logits = malloc((size_t)m->cfg.vocab * sizeof *logits);
    int toks[2] = {0, m->cfg.vocab - 1};
    if (logits) fwd_eval(f, toks, ctx < 2 ? 1 : 2, 0, logits, FWD_LOGITS_LAST);
    free(logits);
    fwd_free(f);
}

#endif
