/* Which instruction-set path the kernels run. Detected from CPUID once per
 * model load; VITAMIN_ISA=scalar|avx512 forces a path (tests run every path the
 * machine supports). */
#ifndef VT_KERNELS_CPU_H
#define VT_KERNELS_CPU_H

#include "vitamin.h"

typedef enum { VT_ISA_SCALAR = 0, VT_ISA_AVX512 = 1 } vt_isa;

/* Best path this CPU supports, or the one VITAMIN_ISA asks for (an error if the
 * CPU cannot run it or the name is unknown). */
vt_status vt_isa_select(vt_isa *out, vt_error *err);
const char *vt_isa_name(vt_isa isa);

#endif
