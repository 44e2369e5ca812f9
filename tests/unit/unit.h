/* Minimal C unit-test helpers: CHECK records a failure and keeps going, so one
 * run reports every broken case; main() returns unit_summary(). */
#ifndef VT_TESTS_UNIT_H
#define VT_TESTS_UNIT_H

#include <math.h>
#include <stdio.h>

static int unit_failures = 0, unit_checks = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        unit_checks++;                                                                \
        if (!(cond)) {                                                                \
            unit_failures++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                         \
    do {                                                                              \
        double a_ = (a), b_ = (b);                                                    \
        unit_checks++;                                                                \
        if (!(fabs(a_ - b_) <= (tol))) {                                              \
            unit_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__,   \
                    __LINE__, #a, a_, b_, (double)(tol));                             \
        }                                                                             \
    } while (0)

static inline int unit_summary(const char *name) {
    printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
    return unit_failures ? 1 : 0;
}

#endif
