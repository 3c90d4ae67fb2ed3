/* dist: MPI ranks or a single process (see dist.h). */
#include "dist.h"

#include "core/err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_started = 0;
static void plan_free(void);

/* Launchers that make a process one of several: Open MPI's mpirun, PMIx
 * (Open MPI 4+, Slurm srun --mpi=pmix), PMI-1/2 (MPICH, srun --mpi=pmi2). */
static int launched_by_mpi(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

#ifndef HAVE_MPI
static int env_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s) s = getenv("PMI_SIZE");
    return s ? atoi(s) : 1;
}
#endif

int dist_have_mpi(void) {
#ifdef HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_init(int *argc, char ***argv) {
    if (g_started || !launched_by_mpi()) return 0;
#ifdef HAVE_MPI
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) return err_set("MPI_Init failed");
    /* Errors come back as codes, never as an abort inside MPI. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_started = 1;
    return 0;
#else
    (void)argc;
    (void)argv;
    if (env_size() > 1)
        return err_set("started by an MPI launcher with %d ranks, but this probe was built without "
                       "MPI (install libopenmpi-dev and rebuild)",
                       env_size());
    return 0;
#endif
}

void dist_finalize(void) {
#ifdef HAVE_MPI
    plan_free();
    if (g_started) {
        dist_progress_end();
        MPI_Finalize();
        g_started = 0;
    }
#endif
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }

#ifdef HAVE_MPI
/* Completes RQ without spinning: Open MPI's blocking calls poll at 100% CPU,
 * and a rank that finished its share early would take a core from the ranks
 * still working (and from anything else on the node) for as long as it
 * waits.  A short spin keeps quick exchanges quick; then 1 ms naps. */
static int quiet_wait(MPI_Request *rq) {
    for (long i = 0;; i++) {
        int done = 0, rc = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        if (i > 1000) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

static int mpi_err(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return 0;
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    return err_set("MPI %s failed: %s", what, s);
}
#endif

int dist_all_ok(int ok, int *bad_rank) {
    if (bad_rank) *bad_rank = -1;
    if (g_size == 1) {
        if (!ok && bad_rank) *bad_rank = 0;
        return ok != 0;
    }
#ifdef HAVE_MPI
    int mine = ok ? g_size : g_rank, first = g_size;
    MPI_Request rq;
    int rc = MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &rq);
    if (rc == MPI_SUCCESS) rc = quiet_wait(&rq);
    if (mpi_err(rc, "Allreduce")) return 0;
    if (first < g_size && bad_rank) *bad_rank = first;
    return first == g_size;
#else
    return ok != 0;
#endif
}

int dist_sum_i64(int64_t *v, int n) {
    if (g_size == 1) return 0;
#ifdef HAVE_MPI
    return mpi_err(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD),
                   "Allreduce");
#else
    (void)v;
    (void)n;
    return 0;
#endif
}

int64_t dist_exscan_i64(int64_t v) {
    if (g_size == 1) return 0;
#ifdef HAVE_MPI
    int64_t r = 0;
    MPI_Exscan(&v, &r, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    return g_rank == 0 ? 0 : r; /* MPI leaves rank 0's result undefined */
#else
    (void)v;
    return 0;
#endif
}

#ifdef HAVE_MPI
enum { TAG_HDR = 101, TAG_DATA = 102, TAG_PROG = 103, TAG_PROG_END = 104 };
static const size_t PIECE = (size_t)1 << 30;

/* Header: payload bytes, and 1 + the failed rank (0 when fine). */
static int send_state(int to, const void *buf, size_t len, int failed) {
    uint64_t hdr[2] = {len, failed >= 0 ? (uint64_t)failed + 1 : 0};
    int rc = MPI_Send(hdr, 2, MPI_UINT64_T, to, TAG_HDR, MPI_COMM_WORLD);
    for (size_t off = 0; rc == MPI_SUCCESS && failed < 0 && off < len; off += PIECE) {
        size_t n = len - off < PIECE ? len - off : PIECE;
        rc = MPI_Send((const char *)buf + off, (int)n, MPI_BYTE, to, TAG_DATA, MPI_COMM_WORLD);
    }
    return mpi_err(rc, "Send");
}

/* Receives a peer's state; *FAILED = the failed rank or -1. */
static int recv_state(int from, void **buf, size_t *len, int *failed) {
    uint64_t hdr[2];
    *buf = NULL;
    *len = 0;
    *failed = -1;
    if (mpi_err(MPI_Recv(hdr, 2, MPI_UINT64_T, from, TAG_HDR, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                "Recv"))
        return -1;
    if (hdr[1]) {
        *failed = (int)(hdr[1] - 1);
        return 0;
    }
    char *b = malloc(hdr[0] ? hdr[0] : 1);
    if (!b)
        return err_set("out of memory receiving %llu bytes from rank %d",
                       (unsigned long long)hdr[0], from);
    for (size_t off = 0; off < hdr[0]; off += PIECE) {
        size_t n = hdr[0] - off < PIECE ? hdr[0] - off : PIECE;
        if (mpi_err(MPI_Recv(b + off, (int)n, MPI_BYTE, from, TAG_DATA, MPI_COMM_WORLD,
                             MPI_STATUS_IGNORE),
                    "Recv")) {
            free(b);
            return -1;
        }
    }
    *buf = b;
    *len = hdr[0];
    return 0;
}
#endif

int dist_reduce(dist_pack_fn pack, dist_merge_fn merge, void *ctx) {
    if (g_size == 1) return 0;
#ifdef HAVE_MPI
    /* Binomial tree: at level STEP, ranks that are odd multiples of STEP send
     * to RANK - STEP; even multiples receive from RANK + STEP.  A rank that
     * has failed keeps taking part (receives and discards), so nobody waits
     * forever, and passes the first failed rank up. */
    int failed = -1;
    char why[512] = "";
    for (int step = 1; step < g_size; step <<= 1) {
        if (g_rank % (2 * step) == step) {
            void *buf = NULL;
            size_t len = 0;
            if (failed < 0 && pack(ctx, &buf, &len)) {
                failed = g_rank;
                snprintf(why, sizeof why, "%s", err_msg());
            }
            int rc = send_state(g_rank - step, buf, len, failed);
            free(buf);
            if (failed >= 0) return failed == g_rank ? err_set("%s", why) : -1;
            return rc;
        }
        if (g_rank % (2 * step) == 0 && g_rank + step < g_size) {
            void *buf;
            size_t len;
            int peer_failed;
            if (recv_state(g_rank + step, &buf, &len, &peer_failed)) {
                if (failed < 0) failed = g_rank, snprintf(why, sizeof why, "%s", err_msg());
                continue;
            }
            if (peer_failed >= 0 && (failed < 0 || peer_failed < failed)) {
                failed = peer_failed;
                snprintf(why, sizeof why, "rank %d failed (see its message)", peer_failed);
            }
            if (failed < 0 && merge(ctx, buf, len)) {
                failed = g_rank;
                snprintf(why, sizeof why, "%s", err_msg());
            }
            free(buf);
        }
    }
    if (failed >= 0) return err_set("%s", why);
    return 0;
#else
    (void)pack;
    (void)merge;
    (void)ctx;
    return 0;
#endif
}

int dist_gather_bytes(const void *buf, size_t len, void **all, size_t **lens) {
    *all = NULL;
    if (lens) *lens = NULL;
    if (g_size == 1) {
        *all = malloc(len ? len : 1);
        if (lens) *lens = malloc(sizeof **lens);
        if (!*all || (lens && !*lens)) return err_set("out of memory");
        memcpy(*all, buf, len);
        if (lens) (*lens)[0] = len;
        return 0;
    }
#ifdef HAVE_MPI
    /* Point to point, so blocks may exceed an int count. */
    if (g_rank > 0) return send_state(0, buf, len, -1);
    size_t *ls = calloc((size_t)g_size, sizeof *ls);
    void **parts = calloc((size_t)g_size, sizeof *parts);
    int rc = 0;
    if (!ls || !parts) rc = err_set("out of memory");
    size_t total = len;
    for (int r = 1; r < g_size; r++) {
        int f;
        if (recv_state(r, &parts[r], &ls[r], &f) && !rc) rc = -1;
        total += ls[r];
    }
    char *out = rc ? NULL : malloc(total ? total : 1);
    if (!rc && !out) rc = err_set("out of memory gathering %zu bytes", total);
    if (!rc) {
        memcpy(out, buf, len);
        ls[0] = len;
        size_t off = len;
        for (int r = 1; r < g_size; r++) {
            memcpy(out + off, parts[r], ls[r]);
            off += ls[r];
        }
    }
    for (int r = 0; parts && r < g_size; r++)
        free(parts[r]);
    free(parts);
    if (rc) {
        free(ls);
        return -1;
    }
    *all = out;
    if (lens)
        *lens = ls;
    else
        free(ls);
    return 0;
#else
    return 0;
#endif
}

/* ---- progress ------------------------------------------------------------------- */

#ifdef HAVE_MPI
static MPI_Request g_preq = MPI_REQUEST_NULL;
static int64_t g_pbuf;
static int64_t *g_latest; /* rank 0: latest count per rank */
static int g_ended;
#endif

void dist_progress_post(int64_t count) {
#ifdef HAVE_MPI
    if (g_size == 1 || g_rank == 0 || g_ended) return;
    int done = 1;
    if (g_preq != MPI_REQUEST_NULL) MPI_Test(&g_preq, &done, MPI_STATUS_IGNORE);
    if (!done) return;
    g_pbuf = count;
    MPI_Isend(&g_pbuf, 1, MPI_INT64_T, 0, TAG_PROG, MPI_COMM_WORLD, &g_preq);
#else
    (void)count;
#endif
}

int64_t dist_progress_sum(int64_t own) {
#ifdef HAVE_MPI
    if (g_size == 1 || g_rank != 0) return own;
    if (!g_latest && !(g_latest = calloc((size_t)g_size, sizeof *g_latest))) return own;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_PROG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) break;
        int64_t v;
        MPI_Recv(&v, 1, MPI_INT64_T, st.MPI_SOURCE, TAG_PROG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        g_latest[st.MPI_SOURCE] = v;
    }
    int64_t s = own;
    for (int r = 1; r < g_size; r++)
        s += g_latest[r];
    return s;
#else
    return own;
#endif
}

void dist_progress_end(void) {
#ifdef HAVE_MPI
    if (g_size == 1 || g_ended) return;
    g_ended = 1;
    /* The ranks end their shares at different times: wait for all here,
     * quietly, rather than in the blocking receives below. */
    MPI_Request rq;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &rq) == MPI_SUCCESS) quiet_wait(&rq);
    /* Collective in effect: every rank calls it once, right after its last
     * post and before any other message to rank 0.  A rank > 0 ends with
     * one TAG_PROG_END message; rank 0 drains each rank's posts up to it. */
    if (g_rank > 0) {
        if (g_preq != MPI_REQUEST_NULL) MPI_Wait(&g_preq, MPI_STATUS_IGNORE);
        int64_t z = 0;
        MPI_Send(&z, 1, MPI_INT64_T, 0, TAG_PROG_END, MPI_COMM_WORLD);
        return;
    }
    /* From each rank in send order (MPI does not reorder one sender's
     * messages that match the same receive): its posts, then its end. */
    for (int r = 1; r < g_size; r++)
        for (;;) {
            MPI_Status st;
            int64_t v;
            MPI_Recv(&v, 1, MPI_INT64_T, r, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG == TAG_PROG_END) break;
        }
    free(g_latest);
    g_latest = NULL;
#endif
}

/* ---- values: neurons split among ranks --------------------------------------- */

#include <stddef.h>

/* The row arrays of values_res_t: where, element size, elements per row
 * (0: k_top, -1: k_bottom, 1: one). */
static const struct {
    size_t off, size;
    int width;
} VFIELDS[] = {
    {offsetof(values_res_t, neuron), 4, 1},        {offsetof(values_res_t, top_ids), 4, 0},
    {offsetof(values_res_t, top_scores), 4, 0},    {offsetof(values_res_t, top_probs), 4, 0},
    {offsetof(values_res_t, bottom_ids), 4, -1},   {offsetof(values_res_t, bottom_scores), 4, -1},
    {offsetof(values_res_t, bottom_probs), 4, -1}, {offsetof(values_res_t, value_norm), 4, 1},
    {offsetof(values_res_t, max_logit), 4, 1},     {offsetof(values_res_t, entropy), 4, 1},
    {offsetof(values_res_t, lse), 4, 1},           {offsetof(values_res_t, promote_rank), 4, 1},
    {offsetof(values_res_t, promote_score), 4, 1}, {offsetof(values_res_t, promote_prob), 4, 1},
};
enum { NVF = sizeof VFIELDS / sizeof *VFIELDS };

static void **vfield(values_res_t *r, int f) { return (void **)((char *)r + VFIELDS[f].off); }
static size_t vrow(const values_res_t *r, int f) {
    int w = VFIELDS[f].width;
    return VFIELDS[f].size * (size_t)(w == 0 ? r->k_top : w < 0 ? r->k_bottom : 1);
}

/* A packed share: int32 header {ok, n, k_top, k_bottom, present bits}, then
 * the present arrays; a failed share carries its message instead. */
static int vpack(int ok, values_res_t *r, void **buf, size_t *len) {
    int32_t h[5] = {ok, ok ? r->n : 0, ok ? r->k_top : 0, ok ? r->k_bottom : 0, 0};
    size_t total = sizeof h;
    if (!ok) total += strlen(err_msg()) + 1;
    for (int f = 0; ok && f < NVF; f++)
        if (*vfield(r, f)) {
            h[4] |= 1 << f;
            total += vrow(r, f) * (size_t)r->n;
        }
    char *b = malloc(total), *p = b;
    if (!b) return err_set("out of memory");
    memcpy(p, h, sizeof h);
    p += sizeof h;
    if (!ok) strcpy(p, err_msg());
    for (int f = 0; ok && f < NVF; f++)
        if (h[4] & (1 << f)) {
            size_t n = vrow(r, f) * (size_t)r->n;
            memcpy(p, *vfield(r, f), n);
            p += n;
        }
    *buf = b;
    *len = total;
    return 0;
}

/* This rank's rows of whole layers, computed ahead by dist_values_plan. */
static struct {
    int n;
    int *layer;        /* (n) */
    values_res_t *res; /* (n) handed over (and cleared) by dist_values_layer */
    int failed;        /* from this layer slot on, the computation failed */
    char why[512];
} g_plan;

static void plan_free(void) {
    for (int s = 0; s < g_plan.n; s++)
        values_res_free(&g_plan.res[s]);
    free(g_plan.layer);
    free(g_plan.res);
    memset(&g_plan, 0, sizeof g_plan);
}

int dist_values_plan(values_t *v, const int *layers, int n_layers, int n_ff, int naive) {
    plan_free();
    if (g_size == 1) return 0;
    int (*fn)(values_t *, int, const int *, int, values_res_t *) =
        naive ? values_layer_naive : values_layer;
    int B = values_block(v), nblk = (n_ff + B - 1) / B;
    int64_t K = (int64_t)n_layers * nblk, k0 = K * g_rank / g_size, k1 = K * (g_rank + 1) / g_size;
    g_plan.layer = malloc((size_t)n_layers * sizeof *g_plan.layer);
    g_plan.res = calloc((size_t)n_layers, sizeof *g_plan.res);
    int *idx = malloc((size_t)n_ff * sizeof *idx);
    g_plan.failed = -1;
    if (!g_plan.layer || !g_plan.res || !idx) {
        free(idx);
        plan_free();
        return err_set("out of memory");
    }
    g_plan.n = n_layers;
    for (int s = 0; s < n_layers; s++) {
        g_plan.layer[s] = layers[s];
        /* Blocks [b0, b1) of this layer fall in this rank's range [k0, k1). */
        int64_t b0 = k0 - (int64_t)s * nblk, b1 = k1 - (int64_t)s * nblk;
        if (b0 < 0) b0 = 0;
        if (b1 > nblk) b1 = nblk;
        int lo = (int)(b0 * B), hi = (int)(b1 * B);
        if (hi > n_ff) hi = n_ff;
        if (lo > hi) lo = hi;
        for (int i = lo; i < hi; i++)
            idx[i - lo] = i;
        if (g_plan.failed < 0 && fn(v, layers[s], idx, hi - lo, &g_plan.res[s])) {
            g_plan.failed = s;
            snprintf(g_plan.why, sizeof g_plan.why, "%s", err_msg());
        }
    }
    free(idx);
    return 0;
}

int dist_values_layer(values_t *v, int layer, const int *neurons, int n, int n_ff, int naive,
                      values_res_t *out) {
    int (*fn)(values_t *, int, const int *, int, values_res_t *) =
        naive ? values_layer_naive : values_layer;
    if (g_size == 1) return fn(v, layer, neurons, n, out);
    memset(out, 0, sizeof *out);
    int N = neurons ? n : n_ff;
    /* Shares are whole blocks of the single-process run (values_layer cuts
     * its list into blocks of values_block() neurons from the start): the
     * same sgemm calls on the same rows, so the float32 scores behind the
     * entropy and log-sum-exp are bit-identical too, not just the lists. */
    int B = values_block(v), nblk = (N + B - 1) / B;
    int lo = (int)((int64_t)nblk * g_rank / g_size) * B,
        hi = (int)((int64_t)nblk * (g_rank + 1) / g_size) * B;
    if (hi > N) hi = N;
    if (lo > N) lo = N;
    int plan = -1;
    for (int s = 0; !neurons && s < g_plan.n; s++)
        if (g_plan.layer[s] == layer) plan = s;
    values_res_t mine;
    memset(&mine, 0, sizeof mine);
    int ok = 1;
    if (plan >= 0) { /* computed ahead: this rank's blocks of this layer */
        mine = g_plan.res[plan];
        memset(&g_plan.res[plan], 0, sizeof mine);
        if (g_plan.failed >= 0 && plan >= g_plan.failed) ok = 0, err_set("%s", g_plan.why);
    } else {
        int *idx = malloc((size_t)(hi - lo + 1) * sizeof *idx);
        ok = idx != NULL;
        if (!ok) err_set("out of memory");
        for (int i = lo; ok && i < hi; i++)
            idx[i - lo] = neurons ? neurons[i] : i;
        ok = ok && fn(v, layer, idx, hi - lo, &mine) == 0;
        free(idx);
    }
    void *buf = NULL, *all = NULL;
    size_t len = 0, *lens = NULL;
    if (vpack(ok, &mine, &buf, &len)) { /* not even the failure can be packed */
        values_res_free(&mine);
        return -1;
    }
    values_res_free(&mine);
    int rc = dist_gather_bytes(buf, len, &all, &lens);
    free(buf);
    if (!dist_all_ok(rc == 0, NULL)) rc = -1;
    if (g_rank != 0 || rc) {
        free(all);
        free(lens);
        if (!rc && !dist_all_ok(1, NULL))
            rc = err_set("another rank failed");
        else if (rc)
            return -1;
        return rc;
    }
    /* Rank 0: check every share, then lay the rows end to end. */
    const char *p = all;
    int32_t h0[5] = {0};
    int total = 0, bad = -1;
    for (int r = 0; r < g_size; r++) {
        int32_t h[5];
        memcpy(h, p, sizeof h);
        if (!h[0] && bad < 0) {
            bad = r;
            err_set("rank %d: %s", r, p + sizeof h);
        }
        if (h[0] && h[1] > 0) {
            if (!h0[0]) memcpy(h0, h, sizeof h);
            if (h[2] != h0[2] || h[3] != h0[3] || h[4] != h0[4]) {
                if (bad < 0) bad = r, err_set("rank %d: its results have another shape", r);
            }
        }
        total += h[1];
        p += lens[r];
    }
    if (bad < 0 && total != N) bad = 0, err_set("gathered %d neurons, expected %d", total, N);
    if (bad < 0 && !h0[0]) { /* nothing computed anywhere: N == 0 */
        free(all);
        free(lens);
        dist_all_ok(1, NULL);
        return fn(v, layer, neurons, 0, out);
    }
    out->layer = layer;
    out->n = total;
    out->k_top = h0[2];
    out->k_bottom = h0[3];
    for (int f = 0; bad < 0 && f < NVF; f++)
        if (h0[4] & (1 << f)) {
            void **dst = vfield(out, f);
            if (!(*dst = malloc(vrow(out, f) * (size_t)total + 1)))
                bad = 0, err_set("out of memory");
        }
    p = all;
    size_t row0 = 0;
    for (int r = 0; bad < 0 && r < g_size; r++) {
        int32_t h[5];
        memcpy(h, p, sizeof h);
        const char *q = p + sizeof h;
        for (int f = 0; h[1] > 0 && f < NVF; f++)
            if (h[4] & (1 << f)) {
                size_t nb = vrow(out, f) * (size_t)h[1];
                memcpy((char *)*vfield(out, f) + vrow(out, f) * row0, q, nb);
                q += nb;
            }
        row0 += (size_t)h[1];
        p += lens[r];
    }
    free(all);
    free(lens);
    if (!dist_all_ok(bad < 0, NULL) || bad >= 0) {
        values_res_free(out);
        return -1;
    }
    return 0;
}
