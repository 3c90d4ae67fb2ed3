/* dist: running one job as several processes (MPI ranks, Open MPI), or as one.
 *
 * probe is built with MPI when the Makefile finds mpicc (HAVE_MPI).  MPI is
 * started only when the process was launched by an MPI launcher (mpirun /
 * mpiexec or Slurm's srun: it sees OMPI_COMM_WORLD_SIZE, PMIX_RANK or
 * PMI_RANK in its environment); otherwise, and in a build without MPI, every
 * function here behaves as the single rank 0 of 1 and costs nothing, so a
 * plain `probe triggers ...` runs exactly as it would without this module.
 *
 * Only this module talks to MPI.  Callers keep their own state and hand dist
 * byte buffers: dist_reduce() combines every rank's state into rank 0 along a
 * binomial tree (log2(P) rounds; each message is a packed state, sent in
 * pieces of at most 1 GiB because MPI counts are int).
 *
 * Failures: a rank that fails carries on to the next collective point
 * (dist_all_ok, dist_reduce) and reports it there, so every rank learns that
 * the job failed and which rank failed first, and all stop cleanly. */
#ifndef PROBE_DIST_H
#define PROBE_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Starts MPI if this process runs under an MPI launcher and the build has
 * MPI; -1 with err set if MPI was wanted but failed to start, or if the job
 * has several ranks and this build has no MPI (each rank would redo the whole
 * job).  Idempotent. */
int dist_init(int *argc, char ***argv);
/* Ends MPI (if started); every rank calls it once before exiting normally. */
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
/* 1 if built with MPI support. */
int dist_have_mpi(void);

/* Collective: 1 if every rank passed OK != 0; otherwise 0 and *BAD_RANK (if
 * not NULL) is the lowest failing rank. */
int dist_all_ok(int ok, int *bad_rank);
/* Collective: sums V[0..N) over all ranks, in place on every rank. */
int dist_sum_i64(int64_t *v, int n);
/* Collective: the sum of V over the ranks below this one (0 on rank 0). */
int64_t dist_exscan_i64(int64_t v);

/* Collective: combines every rank's state into rank 0.  At each tree level a
 * sending rank calls PACK (a malloc'd buffer, freed by dist) and stops; a
 * receiving rank calls MERGE with the peer's bytes.  Returns 0 on the rank
 * where everything went well; a failing PACK or MERGE (err set) makes that
 * subtree fail, and the failure reaches rank 0 (message "rank R: ...").  On
 * one rank nothing is called. */
typedef int (*dist_pack_fn)(void *ctx, void **buf, size_t *len);
typedef int (*dist_merge_fn)(void *ctx, const void *buf, size_t len);
int dist_reduce(dist_pack_fn pack, dist_merge_fn merge, void *ctx);

/* Collective: rank 0 gathers variable-size byte blocks, one per rank, in rank
 * order, into *ALL (malloc'd on rank 0, caller frees; NULL elsewhere) with
 * LENS[r] per rank (malloc'd on rank 0).  */
int dist_gather_bytes(const void *buf, size_t len, void **all, size_t **lens);

/* Point-to-point progress counters, not collective: a rank > 0 posts its
 * count now and then (dropped if the previous post is still in flight);
 * rank 0 collects whatever has arrived and returns the sum over ranks of the
 * latest counts (its own included).  dist_progress_end() must be called by
 * every rank after its last post; it drains outstanding messages. */
void dist_progress_post(int64_t count);
int64_t dist_progress_sum(int64_t own);
void dist_progress_end(void);

/* values: neurons split among ranks.  Projects neurons NEURONS[0..N) of
 * LAYER (all N_FF of them when NEURONS is NULL): rank r computes the r-th of
 * P contiguous shares (whole blocks) with values_layer (or values_layer_naive when NAIVE),
 * rank 0 gathers the rows in order into *OUT — the same arrays a single
 * process makes, bit for bit, as every neuron's list is computed the same
 * way wherever it runs.  Other ranks get an empty *OUT (n = 0).  Collective;
 * -1 with err set on every rank if any rank failed (rank 0's message names
 * the failing rank and its cause). */
#include "values.h"
int dist_values_layer(values_t *v, int layer, const int *neurons, int n, int n_ff, int naive,
                      values_res_t *out);
/* Whole layers: divides the (layer x block) pairs of LAYERS[0..N_LAYERS)
 * among the ranks in contiguous runs — so every rank is busy even when a
 * layer has fewer blocks than there are ranks — and computes this rank's
 * run now (not collective; a failure is kept and reported by the
 * dist_values_layer call of that layer).  dist_values_layer(NEURONS = NULL)
 * then gathers the planned rows of its layer.  No-op on one rank. */
int dist_values_plan(values_t *v, const int *layers, int n_layers, int n_ff, int naive);

#endif
