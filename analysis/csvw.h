/* csvw: tidy CSV output through libcsv.  Text fields are always quoted and
 * escaped by libcsv's csv_fwrite (so any token text, commas, quotes and
 * newlines included, survives); numbers are written bare so pandas, R and
 * gnuplot parse them as numbers. */
#ifndef PROBE_CSVW_H
#define PROBE_CSVW_H

#include <stdio.h>

typedef struct {
    FILE *fp;
    int col; /* fields written in the current row */
    int failed;
} csvw_t;

void csvw_init(csvw_t *w, FILE *fp);
void csvw_str(csvw_t *w, const char *s);
void csvw_strn(csvw_t *w, const char *s, size_t n);
void csvw_int(csvw_t *w, long long v);
void csvw_float(csvw_t *w, double v); /* shortest round-trip for f32: %.9g */
void csvw_end_row(csvw_t *w);
/* Header row from a comma-separated list of plain column names. */
void csvw_header(csvw_t *w, const char *cols);
/* 0 if every write succeeded, -1 with err set otherwise. */
int csvw_status(const csvw_t *w);

#endif
