/*
 * Calls made of the file API's operations: a directory listing (on the pool: io_uring has no
 * getdents), reading a whole file with a size limit, and replacing a file atomically.
 */
#include "fs/fs.h"
#include "pool/pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- listdir ---- */

struct listing {
    char *path;
    char **names; /* one block: the pointer array, then the strings */
    size_t count;
};

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_run(void *arg)
{
    struct listing *ls = arg;
    DIR *d = opendir(ls->path);
    if (d == NULL)
        return -errno;
    size_t n = 0, bytes = 0, cap = 64;
    char *strs = weft__malloc(cap * 16), *p;
    size_t scap = cap * 16;
    int err = 0;
    if (strs == NULL) {
        closedir(d);
        return -ENOMEM;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            err = -errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t l = strlen(e->d_name) + 1;
        if (bytes + l > scap) {
            while (bytes + l > scap)
                scap *= 2;
            p = weft__realloc(strs, scap);
            if (p == NULL) {
                err = -ENOMEM;
                break;
            }
            strs = p;
        }
        memcpy(strs + bytes, e->d_name, l);
        bytes += l;
        n++;
    }
    closedir(d);
    if (err < 0) {
        weft__free(strs);
        return err;
    }
    size_t ptrs = (n + 1) * sizeof(char *);
    char **names = weft__malloc(ptrs + bytes + 1);
    if (names == NULL) {
        weft__free(strs);
        return -ENOMEM;
    }
    p = (char *)names + ptrs;
    memcpy(p, strs, bytes);
    weft__free(strs);
    for (size_t i = 0; i < n; i++) {
        names[i] = p;
        p += strlen(p) + 1;
    }
    names[n] = NULL;
    qsort(names, n, sizeof(char *), cmp_names);
    ls->names = names;
    ls->count = n;
    return 0;
}

static void list_drop(void *arg, int result)
{
    struct listing *ls = arg;
    weft__free(ls->names);
    weft__free(ls->path);
    weft__free(ls);
}

int weft_file_listdir(const char *path, char ***names, size_t *count)
{
    if (path == NULL || names == NULL || count == NULL)
        return -EFAULT;
    struct listing *ls = weft__calloc(1, sizeof(*ls));
    if (ls == NULL)
        return -ENOMEM;
    ls->path = weft__strdup(path);
    if (ls->path == NULL) {
        weft__free(ls);
        return -ENOMEM;
    }
    int r = weft__pool_call(WEFT__POOL_WORK, list_run, ls, list_drop, WEFT_NO_DEADLINE);
    if (r == -ECANCELED || r == -ETIMEDOUT)
        return r; /* list_drop has or will free everything */
    if (r == 0) {
        *names = ls->names;
        *count = ls->count;
    } else {
        weft__free(ls->names);
    }
    weft__free(ls->path);
    weft__free(ls);
    return r;
}

/* ---- cleanup that a cancel must not stop ---- */

/* Run `fn` with any pending cancel held back, then put it back. */
static int uncancelled(int (*fn)(const char *), const char *path)
{
    weft_task_t *t = weft__tls_loop->current;
    uint8_t pending = t->must_cancel;
    t->must_cancel = 0;
    int r = fn(path);
    if (pending)
        t->must_cancel = 1;
    return r;
}

static int close_fd(int fd)
{
    weft_task_t *t = weft__tls_loop->current;
    uint8_t pending = t->must_cancel;
    t->must_cancel = 0;
    int r = weft_file_close(fd);
    if (pending)
        t->must_cancel = 1;
    return r;
}

/* ---- read_all ---- */

int weft_file_read_all(const char *path, size_t limit, char **data, size_t *len)
{
    if (path == NULL || data == NULL || len == NULL)
        return -EFAULT;
    int fd = weft_file_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    int r = weft_file_fstat(fd, &st);
    size_t cap = 4096;
    if (r == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1; /* +1: to see the end without growing */
    if (cap > limit + 1 && limit < SIZE_MAX)
        cap = limit + 1;
    char *buf = r == 0 ? weft__malloc(cap + 1) : NULL;
    size_t n = 0;
    if (r == 0 && buf == NULL)
        r = -ENOMEM;
    while (r == 0) {
        if (n == cap) {
            if (n > limit) {
                r = -EFBIG;
                break;
            }
            size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *nb = weft__realloc(buf, ncap + 1);
            if (nb == NULL) {
                r = -ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = weft_file_pread(fd, buf + n, cap - n, (int64_t)n);
        if (k < 0)
            r = (int)k;
        else if (k == 0)
            break;
        else
            n += (size_t)k;
    }
    if (r == 0 && n > limit)
        r = -EFBIG;
    close_fd(fd);
    if (r < 0) {
        weft__free(buf);
        return r;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* ---- write_atomic ---- */

void (*weft__fs_atomic_hook)(void);

int weft_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    if (path == NULL || (data == NULL && len > 0))
        return -EFAULT;
    size_t pl = strlen(path);
    if (pl == 0)
        return -ENOENT;
    char *tmp = weft__malloc(pl + 16);
    if (tmp == NULL)
        return -ENOMEM;
    int fd = -EEXIST;
    static _Atomic unsigned counter;
    for (int tries = 0; tries < 100 && fd == -EEXIST; tries++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned v = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 8) ^ (atomic_fetch_add(&counter, 1) * 2654435761u);
        snprintf(tmp, pl + 16, "%s.tmp-%06x", path, v & 0xffffff);
        fd = weft_file_open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    }
    if (fd < 0) {
        weft__free(tmp);
        return fd;
    }
    int r = 0;
    size_t off = 0;
    while (r == 0 && off < len) {
        ssize_t k = weft_file_pwrite(fd, (const char *)data + off, len - off, (int64_t)off);
        if (k < 0)
            r = (int)k;
        else if (k == 0)
            r = -EIO;
        else
            off += (size_t)k;
    }
    if (r == 0)
        r = weft_file_fsync(fd);
    int c = close_fd(fd);
    if (r == 0)
        r = c;
    if (r == 0 && weft__fs_atomic_hook != NULL)
        weft__fs_atomic_hook();
    if (r == 0)
        r = weft_file_rename(tmp, path);
    if (r < 0) {
        uncancelled(weft_file_unlink, tmp);
        weft__free(tmp);
        return r;
    }
    weft__free(tmp);
    /* Make the rename itself durable: fsync the directory. */
    const char *slash = strrchr(path, '/');
    size_t dl = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = weft__malloc(dl + 1);
    if (dir == NULL)
        return -ENOMEM;
    memcpy(dir, slash == NULL ? "." : path, dl);
    dir[dl] = '\0';
    int dfd = weft_file_open(dir, O_RDONLY | O_DIRECTORY, 0);
    weft__free(dir);
    if (dfd < 0)
        return dfd == -ECANCELED ? dfd : 0; /* the new content is in place */
    r = weft_file_fsync(dfd);
    close_fd(dfd);
    return r == -EINVAL ? 0 : r; /* some filesystems refuse fsync on directories */
}
