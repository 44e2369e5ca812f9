#include "kernels/kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/gemm.h"

vt_status vt_kernels_select(vt_kernels *out, vt_error *err) {
    memset(out, 0, sizeof *out);
    vt_status st = vt_isa_select(&out->isa, err);
    if (st) return st;
    out->bf16 = out->isa == VT_ISA_AVX512 && __builtin_cpu_supports("avx512bf16");
    /* AMX unless VITAMIN_AMX=0 (the tests use that to cover the VDPBF16PS path). */
    const char *amx_env = getenv("VITAMIN_AMX");
    out->amx = out->bf16 && !(amx_env && !strcmp(amx_env, "0")) && gemm_amx_available();
    return VT_OK;
}

static vt_kernels process_table;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void select_process_table(void) {
    vt_error err = {0};
    if (vt_kernels_select(&process_table, &err)) {
        fprintf(stderr, "vitamin: %s; using the scalar kernels\n", err.message);
        memset(&process_table, 0, sizeof process_table);
        process_table.isa = VT_ISA_SCALAR;
    }
}

const vt_kernels *vt_kernels_process(void) {
    pthread_once(&process_once, select_process_table);
    return &process_table;
}

vt_status vt_kernels_require_bf16(const vt_kernels *k, vt_error *err) {
    if (k->bf16) return VT_OK;
    return vt_fail(err, VT_ERR_UNSUPPORTED, "bf16 weights need a CPU with AVX512-BF16 (this one has none, or "
                                            "VITAMIN_ISA forces another path); load in fp32 instead");
}
