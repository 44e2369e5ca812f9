#include "kernels/cpu.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *vt_isa_name(vt_isa isa) { return isa == VT_ISA_AVX512 ? "avx512" : "scalar"; }

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}

vt_status vt_isa_select(vt_isa *out, vt_error *err) {
    const char *forced = getenv("VITAMIN_ISA");
    int avx512 = cpu_has_avx512();
    if (!forced || !*forced || !strcmp(forced, "auto")) {
        *out = avx512 ? VT_ISA_AVX512 : VT_ISA_SCALAR;
        return VT_OK;
    }
    if (!strcmp(forced, "scalar")) {
        *out = VT_ISA_SCALAR;
        return VT_OK;
    }
    if (!strcmp(forced, "avx512")) {
        if (!avx512)
            return vt_fail(err, VT_ERR_UNSUPPORTED,
                           "VITAMIN_ISA=avx512 but this CPU lacks AVX-512 (F/VL/BW/DQ); unset it or use 'scalar'");
        *out = VT_ISA_AVX512;
        return VT_OK;
    }
    return vt_fail(err, VT_ERR_ARGUMENT, "VITAMIN_ISA='%s' is not one of: auto, scalar, avx512", forced);
}
