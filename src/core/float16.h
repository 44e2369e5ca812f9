/* The 16-bit float formats of checkpoints: IEEE half (fp16) and bfloat16.
 * One place for every conversion the loader, the converter and the bf16 GEMM
 * need; narrowing rounds to nearest even, NaN stays NaN. */
#ifndef VT_CORE_FLOAT16_H
#define VT_CORE_FLOAT16_H

#include <stdint.h>

float vt_f16_to_f32(uint16_t h);
float vt_bf16_to_f32(uint16_t h);
uint16_t vt_f32_to_f16(float f);
uint16_t vt_f32_to_bf16(float f);

#endif
