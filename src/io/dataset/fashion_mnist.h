/* The training demo's dataset: Debian's Fashion-MNIST IDX files (package
 * dataset-fashion-mnist) as an open_clip-style image-caption set:
 *
 *   DIR/train/NNNNN.png, DIR/test/NNNNN.png   28x28 grayscale
 *   DIR/train.csv       filepath<TAB>title    captions from the class name in
 *                                             varied phrasings (chosen per image,
 *                                             deterministically)
 *   DIR/test.csv        filepath<TAB>label    the class index
 *   DIR/classnames.txt  one readable class name per line
 *   DIR/templates.txt   zero-shot prompt templates, "{}" for the class name
 *
 * Idempotent: an existing file with the right bytes is left alone, every other
 * file is written to a temporary name and renamed, so an interrupted run
 * leaves no torn PNG and a rerun completes it. */
#ifndef VT_IO_FASHION_MNIST_H
#define VT_IO_FASHION_MNIST_H

#include "vitamin.h"

#define FASHION_MNIST_DEFAULT_SRC "/usr/share/datasets/fashion-mnist"

/* Reads SRC/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] and writes the
 * set into `out_dir`; the image counts are returned when the pointers are set. */
vt_status fashion_mnist_write(const char *src, const char *out_dir, int *train_count, int *test_count,
                              vt_error *err);

#endif
