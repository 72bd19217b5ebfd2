/* Helpers shared by the subprocess tests. */
#ifndef WEFT_PROCTEST_H
#define WEFT_PROCTEST_H

#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

/* How many children this process has, from /proc: zombies counted or not. */
static inline int pt_children(bool zombies)
{
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (k <= 0)
            continue;
        buf[k] = '\0';
        char *rp = strrchr(buf, ')');
        char st;
        int ppid;
        if (rp != NULL && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == getpid() &&
            (zombies || st != 'Z'))
            n++;
    }
    closedir(d);
    return n;
}

/* A task body: spawn `sleep 30` into *(weft_proc_t **)arg (for tests that cancel it). */
static inline int pt_spawn_sleeper(void *arg)
{
    weft_proc_t **out = arg;
    char *sl[] = {"sleep", "30", NULL};
    return weft_proc_spawn(out, sl, NULL);
}

#endif /* WEFT_PROCTEST_H */
