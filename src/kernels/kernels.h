/* The kernel choice, made once: which CPU path (scalar or AVX-512) and which
 * bf16 multiplier (AMX tiles or VDPBF16PS) the kernels below run, from CPUID
 * and the VITAMIN_ISA / VITAMIN_AMX overrides. A model takes its table at
 * load, training and the other callers without a model take the process's
 * (selected once). Code outside src/kernels/ never branches on the ISA: it
 * passes the table's `isa` to kernel entry points, which dispatch inside.
 *
 * This is the seam a GPU backend fills (docs/ARCHITECTURE.md, "Kernel
 * table"): a device table would add a device, device-resident packed weights
 * (the packed B panels of kernels/gemm.h, uploaded once at load), an
 * activation arena on the device sized as the scratch pool is, and a stream
 * the forward pass enqueues its kernels on. */
#ifndef VT_KERNELS_KERNELS_H
#define VT_KERNELS_KERNELS_H

#include "kernels/cpu.h"
#include "vitamin.h"

typedef struct {
    vt_isa isa;      /* the fp32 path of every kernel */
    int bf16;        /* the CPU can run the bf16 GEMMs (AVX512-BF16, with the AVX-512 path) */
    int amx;         /* ... and with AMX-BF16 tiles (unless VITAMIN_AMX=0) */
} vt_kernels;

/* Selects from the CPU and the environment; a VITAMIN_ISA the CPU cannot run
 * or that is no known name is an error saying so. */
vt_status vt_kernels_select(vt_kernels *out, vt_error *err);

/* The process's table, selected on first use; an unusable VITAMIN_ISA is
 * reported once on stderr and the scalar path used, since its callers
 * (training kernels, LayerNorm rows) have no error path. */
const vt_kernels *vt_kernels_process(void);

/* VT_OK if bf16 GEMMs can run with `k`, else an error explaining why. */
vt_status vt_kernels_require_bf16(const vt_kernels *k, vt_error *err);

#endif
