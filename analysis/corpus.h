/* corpus: documents streamed from a text corpus of any size.
 *
 * Formats:
 *   CORPUS_TEXT   plain text; documents are separated by one or more blank
 *                 lines (lines of spaces/tabs count as blank); the lines of
 *                 a document are joined with "\n", "\r\n" endings become "\n".
 *   CORPUS_LINES  plain text, one document per non-blank line.
 *   CORPUS_JSONL  JSON Lines: one object per line whose "text" string is the
 *                 document (jansson); blank lines are ignored.
 *
 * The input is read through a fixed buffer: memory is bounded by the read
 * buffer plus MAX_DOC bytes, whatever the corpus size ("-" reads stdin).
 * A text document longer than MAX_DOC is cut into pieces of at most MAX_DOC
 * bytes (at line ends when it can, else at a character boundary); each piece
 * is a document of its own and the cut is counted.  A JSONL line longer than
 * MAX_DOC is skipped and counted.
 *
 * Every document, handed out or skipped, takes the next document id (0-based),
 * so ids follow input order: document 7 is the 8th paragraph, line or JSONL
 * record.  Skipped (and counted): documents with bytes that are not UTF-8,
 * JSONL lines that are not JSON, have no string "text", or have an empty one. */
#ifndef PROBE_CORPUS_H
#define PROBE_CORPUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CORPUS_AUTO = 0, CORPUS_TEXT, CORPUS_LINES, CORPUS_JSONL } corpus_fmt_t;

typedef struct {
    int64_t docs;     /* documents handed out */
    int64_t ids;      /* ids used: handed out + skipped */
    int64_t bad_utf8; /* skipped: not valid UTF-8 */
    int64_t bad_json; /* skipped: JSONL line that is not a JSON object */
    int64_t no_text;  /* skipped: JSONL object without a string "text" */
    int64_t empty;    /* skipped: JSONL "text" is "" */
    int64_t too_long; /* skipped: JSONL line longer than MAX_DOC */
    int64_t split;    /* extra pieces made by cutting long text documents */
    uint64_t bytes;   /* bytes read so far */
    uint64_t size;    /* total bytes of a regular file, else 0 (stdin, pipes) */
} corpus_stats_t;

typedef struct corpus corpus_t;

/* Opens PATH ("-" for stdin).  CORPUS_AUTO picks JSONL for names ending in
 * .jsonl, .ndjson or .json, else TEXT.  MAX_DOC >= 16.  NULL with err set.
 * Caller frees with corpus_close(). */
corpus_t *corpus_open(const char *path, corpus_fmt_t fmt, size_t max_doc);
void corpus_close(corpus_t *c);

/* The next document: 1 with *TEXT (LEN bytes, valid UTF-8, NUL-terminated;
 * borrowed until the next call) and its *ID; 0 at the end; -1 with err set on
 * a read error. */
int corpus_next(corpus_t *c, const char **text, size_t *len, int64_t *id);

/* Splitting one file among several readers (MPI ranks, analysis/dist):
 * corpus_boundary() is the first document boundary at or after byte OFFSET
 * of regular file PATH (0 for 0; the file size if there is none), a
 * position where a reader starting afresh is in the same state as one that
 * read the file from its start: in TEXT format the start of a non-blank line
 * after a blank one, otherwise the start of a line.  It is monotone in
 * OFFSET, so boundaries of P equal shares give P contiguous ranges.
 * corpus_set_range(), called before the first corpus_next(), makes C read
 * only bytes [BEGIN, END); its document ids then start at 0, to be shifted
 * by the ids of the ranges before it.  -1 with err set (stdin cannot be
 * split). */
int corpus_boundary(const char *path, corpus_fmt_t fmt, size_t max_doc, uint64_t offset,
                    uint64_t *out);
int corpus_set_range(corpus_t *c, uint64_t begin, uint64_t end);

/* Counters so far (borrowed). */
const corpus_stats_t *corpus_stats(const corpus_t *c);
corpus_fmt_t corpus_format(const corpus_t *c);
const char *corpus_fmt_name(corpus_fmt_t f);
/* Parses "text", "lines", "jsonl" (and "auto"); -1 if unknown. */
int corpus_parse_fmt(const char *s, corpus_fmt_t *out);

#endif
