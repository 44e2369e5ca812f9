/* open_clip's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, byte for byte the
 * file open_clip ships) compiled into the library, so the CLI, libvitamin and
 * an installed copy tokenize with no set-up and no file beside them. */
#ifndef VT_IO_TOKENIZER_VOCAB_H
#define VT_IO_TOKENIZER_VOCAB_H

#include <stddef.h>

extern const unsigned char clip_bpe_vocab_gz[];
size_t clip_bpe_vocab_gz_size(void);

#endif
