/* Helpers shared by the file tests: which engine a run is for, and the check that it got it. */
#ifndef WEFT_FSTEST_H
#define WEFT_FSTEST_H

#include "test.h"
#include "fs/fs.h"

/* The engine this run tests: WEFT_FILE_ENGINE=uring or pool (as ctest registers each file
 * twice), or, run by hand, the default the library picks. */
static inline int ft_engine_wanted(void)
{
    const char *e = getenv("WEFT_FILE_ENGINE");
    if (e == NULL)
        return weft__uring_probe() == 0 ? WEFT_FILE_URING : WEFT_FILE_POOL;
    return strcmp(e, "uring") == 0 ? WEFT_FILE_URING : WEFT_FILE_POOL;
}

/* The running loop uses engine `want`; a kernel that refuses io_uring skips the test (77). */
static inline void ft_check_engine(int want)
{
    int e = weft_file_engine();
    if (want == WEFT_FILE_URING && e != WEFT_FILE_URING) {
        fprintf(stderr, "io_uring refused here: skipped\n");
        exit(77);
    }
    CHECK_EQ(e, want);
}

#endif /* WEFT_FSTEST_H */
