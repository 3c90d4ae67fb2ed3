/* mfile: read-only mappings of model files (see mfile.h). */
#include "mfile.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

mfile_t *mfile_open(const char *path) {
    mfile_t *f = calloc(1, sizeof *f);
    if (!f) {
        err_set("%s: out of memory", path);
        return NULL;
    }
    f->path = strdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set("%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            err_set("%s: cannot map: %s", path, strerror(errno));
            close(fd);
            goto fail;
        }
        /* Big read-only weight buffers: ask for huge pages (faster sequential
         * reads); small files are not worth the syscall. */
        if (f->size >= (8u << 20)) madvise(p, f->size, MADV_HUGEPAGE);
        f->data = p;
    }
    close(fd);
    return f;
fail:
    mfile_close(f);
    return NULL;
}

void mfile_close(mfile_t *f) {
    if (!f) return;
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    free(f);
}

char *mfile_slurp(const char *path, size_t max_bytes, size_t *len_out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        err_set("%s: not a regular file", path);
        return NULL;
    }
    if ((size_t)st.st_size > max_bytes) {
        fclose(fp);
        err_set("%s: file is %lld bytes, more than the %zu allowed", path, (long long)st.st_size,
                max_bytes);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        err_set("%s: out of memory", path);
        return NULL;
    }
    if (fread(buf, 1, n, fp) != n) {
        free(buf);
        fclose(fp);
        err_set("%s: read error", path);
        return NULL;
    }
    fclose(fp);
    buf[n] = '\0';
    if (len_out) *len_out = n;
    return buf;
}

void *mfile_alloc_huge(size_t bytes) {
    const size_t huge = 2u << 20;
    /* Smaller buffers would each pin a whole 2 MiB page once touched. */
    if (bytes < 2 * huge) return malloc(bytes ? bytes : 1);
    if (bytes > SIZE_MAX - huge) return NULL;
    size_t n = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, n);
    if (p) madvise(p, n, MADV_HUGEPAGE);
    return p;
}
