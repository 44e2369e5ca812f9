/* The vocabulary's bytes come from share/bpe_simple_vocab_16e6.txt.gz (the
 * file open_clip ships, kept in the repo; tests/test_vocab.py checks it equals
 * the installed open_clip's). `.incbin` reads it at assembly time, relative to
 * the directory the compiler runs in, which the Makefile keeps at the repo
 * root; the Makefile also lists the file as a prerequisite of this object. */
#include "io/text/tokenizer_vocab.h"

__asm__(".section .rodata\n"
        ".balign 64\n"
        ".globl clip_bpe_vocab_gz\n"
        ".hidden clip_bpe_vocab_gz\n"
        "clip_bpe_vocab_gz:\n"
        ".incbin \"share/bpe_simple_vocab_16e6.txt.gz\"\n"
        "clip_bpe_vocab_gz_end:\n"
        ".previous\n");

extern const unsigned char clip_bpe_vocab_gz_end[];

size_t clip_bpe_vocab_gz_size(void) { return (size_t)(clip_bpe_vocab_gz_end - clip_bpe_vocab_gz); }
