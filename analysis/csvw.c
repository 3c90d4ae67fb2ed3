/* csvw: CSV rows via libcsv (see csvw.h). */
#include "csvw.h"

#include "core/err.h"

#include <csv.h>
#include <string.h>

void csvw_init(csvw_t *w, FILE *fp) {
    w->fp = fp;
    w->col = 0;
    w->failed = 0;
}

static void sep(csvw_t *w) {
    if (w->col++ && fputc(',', w->fp) == EOF) w->failed = 1;
}

void csvw_strn(csvw_t *w, const char *s, size_t n) {
    sep(w);
    if (csv_fwrite(w->fp, s, n) != 0) w->failed = 1;
}

void csvw_str(csvw_t *w, const char *s) { csvw_strn(w, s, strlen(s)); }

void csvw_int(csvw_t *w, long long v) {
    sep(w);
    if (fprintf(w->fp, "%lld", v) < 0) w->failed = 1;
}

void csvw_float(csvw_t *w, double v) {
    sep(w);
    if (fprintf(w->fp, "%.9g", v) < 0) w->failed = 1;
}

void csvw_end_row(csvw_t *w) {
    if (fputc('\n', w->fp) == EOF) w->failed = 1;
    w->col = 0;
}

void csvw_header(csvw_t *w, const char *cols) {
    /* Column names are plain identifiers: written bare, as R and pandas expect. */
    if (fputs(cols, w->fp) == EOF) w->failed = 1;
    csvw_end_row(w);
}

int csvw_status(const csvw_t *w) {
    if (w->failed || ferror(w->fp)) return err_set("write error");
    return 0;
}
