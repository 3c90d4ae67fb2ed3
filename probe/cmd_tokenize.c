#include "cli.h"
/* placeholder: replaced by the tokenizer work */
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("tokenize: not implemented yet"); }
