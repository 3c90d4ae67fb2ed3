/* Hostile inputs: the hand-made broken files of tests/hostile/make_hostile.py
 * (offsets past the end, negative and overflowing shapes, header lengths
 * beyond the file, truncated GGUF strings, absurd vocabulary sizes, deeply
 * nested JSON, megabyte-long tokens) must each give exactly one line on
 * stderr naming the file and what is wrong, and a non-zero exit that is not a
 * signal.  And a `probe values` or `probe triggers` killed mid-run must leave
 * neither its output nor a temporary behind. */
#include "tutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M260 "models/stories260K/"

/* Runs CMD; wants failure, one stderr line containing FILE's name and NEEDLE. */
static void want_error(const char *cmd, const char *file, const char *needle) {
    char *out = NULL, *err = NULL;
    int rc = tu_run(cmd, &out, &err);
    cr_expect(rc > 0 && rc < 128, "%s: exit %d (want an error exit, not success or a signal)\n%s",
              file, rc, err ? err : "");
    cr_expect_eq(tu_lines(err), 1, "%s: want one line on stderr, got:\n%.2000s", file,
                 err ? err : "");
    cr_expect(err && strstr(err, file), "%s: the message does not name the file: %.2000s", file,
              err ? err : "");
    cr_expect(err && strstr(err, needle), "%s: the message lacks '%s': %.2000s", file, needle,
              err ? err : "");
    free(out);
    free(err);
}

Test(hostile, files_give_one_clear_error, .timeout = 300) {
    char *dir = tu_tmpdir(), cmd[16384];
    int rc = tu_runf(NULL, NULL, "%s tests/hostile/make_hostile.py %s", tu_py(), dir);
    cr_assert_eq(rc, 0, "make_hostile.py failed");
    /* probe info --model FILE */
    static const struct {
        const char *file, *needle;
    } models[] = {
        {"gguf_offset_past_end.gguf", "lies outside the file"},
        {"gguf_shape_overflow.gguf", "overflows"},
        {"gguf_shape_negative.gguf", "dimension 0 of size 18446744073709551615"},
        {"gguf_too_many_dims.gguf", "1000 dimensions"},
        {"gguf_truncated_string.gguf", "truncated: general.name"},
        {"gguf_key_length_huge.gguf", "truncated"},
        {"gguf_1mb_key.gguf", "1048576 bytes long"},
        {"gguf_huge_counts.gguf", "more than the file can hold"},
        {"gguf_absurd_vocab.gguf", "more than the file holds"},
        {"gguf_nested_arrays.gguf", "array of unknown type"},
        {"st_header_longer_than_file", "header length 1048576 runs past the end"},
        {"st_header_length_absurd", "runs past the end"},
        {"st_offset_past_end", "outside the data section"},
        {"st_offsets_reversed", "outside the data section"},
        {"st_shape_negative", "not an integer >= 0"},
        {"st_shape_overflow", "overflows"},
        {"st_nested_json", "maximum parsing depth"},
        {"cfg_negative_layers", "\"n_layer\" = -3 is outside"},
        {"cfg_absurd_sizes", "is outside"},
        {"cfg_nested_json", "maximum parsing depth"},
        {"l2c_negative_dims.bin", "dim -64"},
        {"l2c_zero_heads.bin", "0 heads"},
        {"l2c_overflow.bin", "implausible model dimensions"},
        {"l2c_absurd_vocab.bin", "vocab 2147483647"},
    };
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        snprintf(cmd, sizeof cmd, "%s info --model %s/%s", tu_bin(), dir, models[i].file);
        want_error(cmd, models[i].file, models[i].needle);
    }
    /* probe tokenize --tokenizer FILE (tokenizer.bin: with stories260K's 512 tokens) */
    static const struct {
        const char *file, *needle;
    } toks[] = {
        {"tokbin_negative_len.bin", "token 3 has length -5"},
        {"tokbin_length_huge.bin", "token 3 has length 2147483647"},
        {"tokbin_truncated.bin", "token 511"},
        {"tok_nested.json", "maximum parsing depth"},
        {"tok_absurd_id.json", "id out of range"},
        {"tok_negative_id.json", "id out of range"},
        {"tok_1mb_token.json", "1048576 bytes long"},
        {"vm_1mb_merge", "is not in the vocabulary"},
    };
    for (size_t i = 0; i < sizeof toks / sizeof *toks; i++) {
        snprintf(cmd, sizeof cmd, "%s tokenize %s%s --tokenizer %s/%s --text hi", tu_bin(),
                 strncmp(toks[i].file, "tokbin", 6) ? "" : "--model ",
                 strncmp(toks[i].file, "tokbin", 6) ? "" : tu_sharedp(M260 "stories260K.bin"), dir,
                 toks[i].file);
        want_error(cmd, toks[i].file, toks[i].needle);
    }
    /* A 1 MB text that is one pre-token, under --max-tokens: refused before encoding. */
    snprintf(cmd, sizeof cmd,
             "cd %s && printf '{\"text\": \"%%s\"}\\n' \"$(cat text_1mb_one_token.txt)\" > "
             "one.jsonl && %s tokenize --tokenizer %s --input one.jsonl --max-tokens 1000",
             dir, tu_bin(), tu_sharedp("tokenizers/gpt2/vocab.json"));
    want_error(cmd, "one.jsonl", "too long for the limit of 1000 tokens");
    snprintf(cmd, sizeof cmd,
             "%s triggers --model %s --tokenizer %s --corpus %s/text_1mb_one_token.txt "
             "--max-tokens 1000 --quiet --out %s/t.h5",
             tu_bin(), tu_sharedp(M260 "stories260K.bin"), tu_sharedp(M260 "tok512.bin"), dir, dir);
    want_error(cmd, "document 0", "too long for the limit of 1000 tokens");
    char p[4200];
    snprintf(p, sizeof p, "%s/t.h5", dir);
    cr_expect(!tu_exists(p), "a failed triggers run left %s", p);
    cr_expect(tu_no_temp_files(dir), "a temporary was left in %s", dir);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* Starts CMD (writing OUT in DIR) in the background, waits until its
 * temporary exists (so the kill lands mid-run, after the output was begun),
 * sends SIG and checks the exit status and that DIR holds only KEEP. */
static void kill_mid_run(const char *dir, const char *cmd, const char *out, const char *sig,
                         int want_status, const char *keep) {
    char *res = NULL;
    int rc = tu_runf(&res, NULL,
                     "cd %s && ( %s & pid=$!; n=0; "
                     "while ! ls -a | grep -q '^\\.%s\\.tmp\\.' && [ $n -lt 600 ]; do "
                     "sleep 0.05; n=$((n+1)); done; sleep 0.2; "
                     "kill -%s $pid; wait $pid; echo status=$? ); ls -a",
                     dir, cmd, out, sig);
    cr_assert_eq(rc, 0);
    char want[64];
    snprintf(want, sizeof want, "status=%d", want_status);
    cr_assert(strstr(res, want), "not ended by SIG%s mid-run (want %s):\n%s", sig, want, res);
    /* ls -a: ".", "..", then only the inputs. */
    char expect[256];
    snprintf(expect, sizeof expect, ".\n..\n%s", keep);
    cr_assert_str_eq(res + (strstr(res, want) - res) + strlen(want) + 1, expect,
                     "an interrupted run left files behind");
    cr_assert(tu_no_temp_files(dir));
    free(res);
}

Test(hostile, values_killed_leaves_nothing, .timeout = 300) {
    char *dir = tu_tmpdir(), cmd[8192];
    /* 1024 neurons x 20000 tokens with the double-precision kernel on one
     * thread: seconds of work before the output is written. */
    int rc = tu_runf(NULL, NULL,
                     "%s tests/ref/make_hf_model.py --arch gpt2 --out %s/m --layers 1 --d 64 "
                     "--heads 4 --ff 1024 --vocab 20000 --ctx 16",
                     tu_py(), dir);
    cr_assert_eq(rc, 0);
    snprintf(cmd, sizeof cmd, "%s values --model m --naive --threads 1 --top 5 --out v.h5",
             tu_bin());
    kill_mid_run(dir, cmd, "v.h5", "TERM", 143, "m\n");
    snprintf(cmd, sizeof cmd, "%s values --model m --naive --threads 1 --top 5 --out v.csv",
             tu_bin());
    kill_mid_run(dir, cmd, "v.csv", "INT", 130, "m\n");
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* SIGINT is covered by triggers/interrupt_leaves_no_output; this is SIGTERM. */
Test(hostile, triggers_terminated_leaves_nothing, .timeout = 300) {
    char *dir = tu_tmpdir(), cmd[8192];
    int rc = tu_runf(NULL, NULL,
                     "cd %s && yes 'Once upon a time there was a little girl named Lily.' | "
                     "head -c 3000000 > c.txt",
                     dir);
    cr_assert_eq(rc, 0);
    snprintf(cmd, sizeof cmd,
             "%s triggers --model %s --tokenizer %s --corpus c.txt --quiet --out t.h5", tu_bin(),
             tu_sharedp(M260 "stories260K.bin"), tu_sharedp(M260 "tok512.bin"));
    kill_mid_run(dir, cmd, "t.h5", "TERM", 143, "c.txt\n");
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}
