/* Peak resident memory of this process for the benchmark drivers. VmHWM, not
 * getrusage's ru_maxrss: the latter survives exec, so a process started from a
 * big parent (the Python driver) would report the parent's size. */
#ifndef VT_BENCH_PEAK_RSS_H
#define VT_BENCH_PEAK_RSS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

#endif
