/* corpus: streaming document reader (see corpus.h).
 *
 * Bytes come through one fixed read buffer; a line is assembled into a
 * buffer of at most MAX_DOC bytes (a longer line is handed over in pieces cut
 * at a UTF-8 character boundary), and a document into another.  Nothing else
 * is allocated per document, so memory does not depend on the corpus size. */
#include "corpus.h"

#include "core/err.h"
#include "core/tok.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RBUF_BYTES ((size_t)1 << 20)

struct corpus {
    FILE *fp;
    int own_fp;
    corpus_fmt_t fmt;
    size_t cap; /* MAX_DOC */
    char *rbuf; /* (RBUF_BYTES) read buffer */
    size_t rpos, rlen;
    int eof;
    char *line; /* (cap + 1) current line or line piece */
    size_t line_len;
    int line_partial; /* the line goes on in the next piece */
    int line_cont;    /* this piece continues the previous one */
    char carry[4];    /* bytes of a character cut at a piece boundary */
    int ncarry;
    int pending; /* TEXT: the line in `line` still has to be placed */
    char *doc;   /* (cap + 1) the document handed out */
    size_t doc_len;
    int reset_doc;
    char *path;
    corpus_stats_t st;
    int ranged; /* corpus_set_range: read only LEFT more bytes */
    uint64_t left;
};

const char *corpus_fmt_name(corpus_fmt_t f) {
    switch (f) {
    case CORPUS_TEXT: return "text";
    case CORPUS_LINES: return "lines";
    case CORPUS_JSONL: return "jsonl";
    default: return "auto";
    }
}

int corpus_parse_fmt(const char *s, corpus_fmt_t *out) {
    static const corpus_fmt_t all[] = {CORPUS_AUTO, CORPUS_TEXT, CORPUS_LINES, CORPUS_JSONL};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!strcmp(s, corpus_fmt_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    return -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

corpus_t *corpus_open(const char *path, corpus_fmt_t fmt, size_t max_doc) {
    if (max_doc < 16) return err_set("maximum document size %zu is below 16 bytes", max_doc), NULL;
    corpus_t *c = calloc(1, sizeof *c);
    if (!c) return err_set("out of memory"), NULL;
    c->cap = max_doc;
    c->path = strdup(path);
    c->rbuf = malloc(RBUF_BYTES);
    c->line = malloc(max_doc + 1);
    c->doc = malloc(max_doc + 1);
    if (!c->path || !c->rbuf || !c->line || !c->doc) {
        err_set("out of memory for documents of %zu bytes", max_doc);
        goto fail;
    }
    if (!strcmp(path, "-")) {
        c->fp = stdin;
    } else {
        c->fp = fopen(path, "rb");
        if (!c->fp) {
            err_set("%s: %s", path, strerror(errno));
            goto fail;
        }
        c->own_fp = 1;
        struct stat sb;
        if (fstat(fileno(c->fp), &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) {
                err_set("%s: is a folder, not a corpus file", path);
                goto fail;
            }
            if (S_ISREG(sb.st_mode)) c->st.size = (uint64_t)sb.st_size;
        }
    }
    if (fmt == CORPUS_AUTO)
        fmt = ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")
                  ? CORPUS_JSONL
                  : CORPUS_TEXT;
    c->fmt = fmt;
    return c;
fail:
    corpus_close(c);
    return NULL;
}

void corpus_close(corpus_t *c) {
    if (!c) return;
    if (c->own_fp && c->fp) fclose(c->fp);
    free(c->rbuf);
    free(c->line);
    free(c->doc);
    free(c->path);
    free(c);
}

const corpus_stats_t *corpus_stats(const corpus_t *c) { return &c->st; }
corpus_fmt_t corpus_format(const corpus_t *c) { return c->fmt; }

static int fill(corpus_t *c) {
    if (c->rpos < c->rlen || c->eof) return 0;
    size_t want = RBUF_BYTES;
    if (c->ranged && c->left < want) want = (size_t)c->left;
    c->rlen = want ? fread(c->rbuf, 1, want, c->fp) : 0;
    if (c->ranged) c->left -= c->rlen;
    c->rpos = 0;
    c->st.bytes += c->rlen;
    if (c->rlen == 0) {
        if (ferror(c->fp)) return err_set("%s: read error: %s", c->path, strerror(errno));
        c->eof = 1;
    }
    return 0;
}

/* Where to cut a full piece of CAP bytes so that it ends on a character
 * boundary: before a multi-byte sequence that does not fit. */
static size_t cut_point(const char *s, size_t cap) {
    size_t i = cap;
    while (i > 0 && cap - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0) return cap;
    size_t lead = i - 1;
    int l = utf8_len((unsigned char)s[lead]);
    if (l > 1 && lead + (size_t)l > cap) return lead > 0 ? lead : cap;
    return cap;
}

/* Reads the next line (or piece of a long line) into c->line.  1 if there is
 * one, 0 at the end of input, -1 on a read error. */
static int read_line(corpus_t *c) {
    c->line_cont = c->line_partial;
    c->line_partial = 0;
    memcpy(c->line, c->carry, (size_t)c->ncarry);
    c->line_len = (size_t)c->ncarry;
    int started = c->ncarry > 0 || c->line_cont;
    c->ncarry = 0;
    for (;;) {
        if (fill(c)) return -1;
        if (c->eof) {
            c->line[c->line_len] = '\0';
            return started ? 1 : 0;
        }
        started = 1;
        const char *s = c->rbuf + c->rpos;
        size_t avail = c->rlen - c->rpos;
        const char *nl = memchr(s, '\n', avail);
        size_t chunk = nl ? (size_t)(nl - s) : avail;
        size_t room = c->cap - c->line_len;
        if (chunk <= room) {
            memcpy(c->line + c->line_len, s, chunk);
            c->line_len += chunk;
            c->rpos += chunk;
            if (nl) {
                c->rpos++;
                c->line[c->line_len] = '\0';
                return 1;
            }
            continue;
        }
        memcpy(c->line + c->line_len, s, room);
        c->rpos += room;
        size_t k = cut_point(c->line, c->cap);
        c->ncarry = (int)(c->cap - k);
        memcpy(c->carry, c->line + k, (size_t)c->ncarry);
        c->line_len = k;
        c->line[k] = '\0';
        c->line_partial = 1;
        return 1;
    }
}

static void strip_cr(corpus_t *c) {
    if (!c->line_partial && c->line_len > 0 && c->line[c->line_len - 1] == '\r')
        c->line[--c->line_len] = '\0';
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return 0;
    return 1;
}

/* The assembled c->doc is complete: 1 if it is handed out, 0 if skipped. */
static int finish_doc(corpus_t *c, const char **text, size_t *len, int64_t *id) {
    int64_t my = c->st.ids++;
    c->reset_doc = 1;
    c->doc[c->doc_len] = '\0';
    if (!utf8_valid(c->doc, c->doc_len)) {
        c->st.bad_utf8++;
        return 0;
    }
    c->st.docs++;
    *text = c->doc;
    *len = c->doc_len;
    *id = my;
    return 1;
}

static int next_text(corpus_t *c, const char **text, size_t *len, int64_t *id) {
    for (;;) {
        if (c->reset_doc) {
            c->doc_len = 0;
            c->reset_doc = 0;
        }
        if (!c->pending) {
            int r = read_line(c);
            if (r < 0) return -1;
            if (r == 0) {
                if (c->doc_len > 0 && finish_doc(c, text, len, id)) return 1;
                if (c->reset_doc) continue;
                return 0;
            }
            strip_cr(c);
        }
        c->pending = 0;
        int blank = !c->line_cont && !c->line_partial && is_blank(c->line, c->line_len);
        if (c->fmt == CORPUS_LINES) {
            if (blank) continue;
            if (c->line_cont) c->st.split++;
            memcpy(c->doc, c->line, c->line_len);
            c->doc_len = c->line_len;
            if (finish_doc(c, text, len, id)) return 1;
            continue;
        }
        if (blank) {
            if (c->doc_len > 0 && finish_doc(c, text, len, id)) return 1;
            continue;
        }
        size_t need = c->doc_len ? c->doc_len + 1 + c->line_len : c->line_len;
        if (need > c->cap) {
            /* The document is full: hand it out, keep the line for the next. */
            c->pending = 1;
            c->st.split++;
            if (finish_doc(c, text, len, id)) return 1;
            continue;
        }
        if (c->doc_len) c->doc[c->doc_len++] = '\n';
        memcpy(c->doc + c->doc_len, c->line, c->line_len);
        c->doc_len += c->line_len;
    }
}

static int next_jsonl(corpus_t *c, const char **text, size_t *len, int64_t *id) {
    for (;;) {
        int r = read_line(c);
        if (r <= 0) return r;
        if (c->line_partial) {
            while (c->line_partial) {
                if ((r = read_line(c)) < 0) return -1;
                if (r == 0) break;
            }
            c->ncarry = 0;
            c->st.ids++;
            c->st.too_long++;
            continue;
        }
        strip_cr(c);
        if (is_blank(c->line, c->line_len)) continue;
        int64_t my = c->st.ids++;
        if (!utf8_valid(c->line, c->line_len)) {
            c->st.bad_utf8++;
            continue;
        }
        json_error_t e;
        json_t *js = json_loadb(c->line, c->line_len, 0, &e);
        if (!js || !json_is_object(js)) {
            json_decref(js);
            c->st.bad_json++;
            continue;
        }
        json_t *t = json_object_get(js, "text");
        if (!json_is_string(t)) {
            json_decref(js);
            c->st.no_text++;
            continue;
        }
        size_t n = json_string_length(t);
        if (n == 0) {
            json_decref(js);
            c->st.empty++;
            continue;
        }
        /* Unescaped text is never longer than its JSON line. */
        PRB_ASSERT(n <= c->cap);
        memcpy(c->doc, json_string_value(t), n);
        json_decref(js);
        c->doc[n] = '\0';
        c->doc_len = n;
        if (!utf8_valid(c->doc, n)) {
            c->st.bad_utf8++;
            continue;
        }
        c->st.docs++;
        *text = c->doc;
        *len = n;
        *id = my;
        return 1;
    }
}

int corpus_next(corpus_t *c, const char **text, size_t *len, int64_t *id) {
    return c->fmt == CORPUS_JSONL ? next_jsonl(c, text, len, id) : next_text(c, text, len, id);
}

/* ---- byte ranges (analysis/dist: several readers share one file) --------------- */

int corpus_set_range(corpus_t *c, uint64_t begin, uint64_t end) {
    PRB_ASSERT(c->st.bytes == 0 && !c->ranged && begin <= end);
    if (!c->own_fp || (c->st.size == 0 && end > 0))
        return err_set("%s: only a regular file can be split into byte ranges", c->path);
    if (end > c->st.size) end = c->st.size;
    if (begin > end) begin = end;
    if (fseeko(c->fp, (off_t)begin, SEEK_SET))
        return err_set("%s: cannot seek to byte %llu: %s", c->path, (unsigned long long)begin,
                       strerror(errno));
    c->ranged = 1;
    c->left = end - begin;
    c->st.size = end - begin;
    return 0;
}

/* A line of LEN bytes in TEXT format is a separator only if the reader sees
 * it whole (at most MAX_DOC bytes) and blank (is_blank, "\r" included). */
int corpus_boundary(const char *path, corpus_fmt_t fmt, size_t max_doc, uint64_t offset,
                    uint64_t *out) {
    if (fmt == CORPUS_AUTO)
        fmt = ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")
                  ? CORPUS_JSONL
                  : CORPUS_TEXT;
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set("%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return err_set("%s: only a regular file can be split into byte ranges", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    *out = size;
    if (offset == 0) {
        fclose(fp);
        *out = 0;
        return 0;
    }
    if (offset >= size) {
        fclose(fp);
        return 0;
    }
    /* The first line start at or after OFFSET: after the '\n' at or after
     * OFFSET - 1. */
    if (fseeko(fp, (off_t)(offset - 1), SEEK_SET)) {
        int e = errno;
        fclose(fp);
        return err_set("%s: cannot seek: %s", path, strerror(e));
    }
    uint64_t pos = offset - 1;
    int ch;
    while ((ch = getc(fp)) != EOF && ch != '\n')
        pos++;
    if (ch == EOF) goto end;
    pos++; /* a line starts at POS */
    if (fmt != CORPUS_TEXT) {
        *out = pos;
        goto end;
    }
    /* TEXT: the start of a non-blank line whose previous line is blank.  The
     * first line scanned has no known predecessor and is never chosen, which
     * keeps the answer a monotone function of OFFSET. */
    int prev_blank = 0;
    for (;;) {
        uint64_t start = pos, len = 0;
        int blank = 1;
        while ((ch = getc(fp)) != EOF && ch != '\n') {
            len++;
            if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\f' && ch != '\v') blank = 0;
        }
        pos += len + (ch == '\n');
        if (len > max_doc) blank = 0;
        if (len == 0 && ch == EOF) break; /* end of file */
        if (!blank && prev_blank) {
            *out = start;
            break;
        }
        prev_blank = blank;
        if (ch == EOF) break;
    }
end:
    if (ferror(fp)) {
        fclose(fp);
        return err_set("%s: read error", path);
    }
    fclose(fp);
    return 0;
}
