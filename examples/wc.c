/*
 * wc: count lines, words and bytes of many files concurrently, printing what coreutils' wc
 * prints (same numbers, same columns, same word rules in the current locale, e.g. C.UTF-8).
 *
 *   wc [-l] [-w] [-c] [FILE...]       (no FILE, or "-": standard input)
 *
 * Up to 64 tasks each take the next file, open it, read it with weft_file_read and count; the
 * file calls run on the loop's file engine (io_uring or the thread pool), so the opens and reads
 * of different files overlap while counting stays on the loop's thread. Results are printed in
 * the order of the arguments once everything is counted.
 */
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include <weft.h>

#define WORKERS 64
#define BUFSZ   (128 * 1024)

struct result {
    unsigned long long lines, words, bytes;
    int err;       /* 0, or the negative errno to report */
    bool counted;  /* print a line for it (also a directory, with zeros) */
    bool statted;  /* st is valid (for the column width) */
    struct stat st;
};

static char **names;
static int nfiles;
static struct result *res;
static int next_file;
static bool multibyte;
static unsigned char cls[256]; /* byte classes: 1 separator, 2 word, 4 newline */

enum { SEP = 1, WORD = 2, NL = 4 };

static bool nbspace(wint_t c)
{
    return c == 0x00A0 || c == 0x2007 || c == 0x202F || c == 0x2060;
}

/* coreutils' rules: \n \r \f ' ' \t \v separate words; a printable character that is a space
 * (or a no-break space) too; any other printable character is part of a word; the rest
 * (control characters, invalid bytes) neither start nor end a word. */
static void init_classes(void)
{
    for (int b = 0; b < 256; b++) {
        unsigned char c = 0;
        if (b == '\n' || b == '\r' || b == '\f' || b == ' ' || b == '\t' || b == '\v')
            c = SEP;
        else if (multibyte ? (b < 0x80 && iswprint((wint_t)b)) : isprint(b) != 0)
            c = (multibyte ? iswspace((wint_t)b) : isspace(b)) ? SEP : WORD;
        if (b == '\n')
            c |= NL;
        cls[b] = c;
    }
}

struct counter {
    unsigned long long lines, words, bytes;
    bool in_word;
};

/* Count the characters of p[0..n); returns how many bytes at the end start a character that
 * the next read completes (the caller keeps them in front of its next read, as coreutils does). */
static size_t count(struct counter *c, const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    mbstate_t mb;
    memset(&mb, 0, sizeof(mb));
    while (p < end) {
        unsigned char b = *p;
        if (b < 0x80 || !multibyte) {
            unsigned char k = cls[b];
            c->lines += (k & NL) != 0;
            if (k & SEP) {
                c->words += c->in_word;
                c->in_word = false;
            } else if (k & WORD) {
                c->in_word = true;
            }
            p++;
            continue;
        }
        wchar_t wc;
        size_t k = mbrtowc(&wc, (const char *)p, (size_t)(end - p), &mb);
        if (k == (size_t)-2) /* incomplete: wait for the next read */
            return (size_t)(end - p);
        if (k == (size_t)-1) { /* invalid byte: skipped, as coreutils does */
            memset(&mb, 0, sizeof(mb));
            p++;
            continue;
        }
        if (k == 0)
            k = 1;
        p += k;
        if (iswprint((wint_t)wc)) {
            if (iswspace((wint_t)wc) || nbspace((wint_t)wc)) {
                c->words += c->in_word;
                c->in_word = false;
            } else {
                c->in_word = true;
            }
        }
    }
    return 0;
}

static int count_fd(int fd, struct result *r, unsigned char *buf, bool regular, off_t size)
{
    struct counter c = {0};
    size_t carry = 0; /* bytes of an incomplete character kept at buf[0..carry) */
    for (;;) {
        /* A regular file smaller than the buffer: one read of size + 1 sees its end. */
        size_t want = regular && size >= 0 && (size_t)size < BUFSZ ? (size_t)size + 1 : BUFSZ;
        ssize_t n = weft_file_read(fd, buf + carry, want);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        c.bytes += (size_t)n;
        size_t have = carry + (size_t)n;
        carry = count(&c, buf, have);
        memmove(buf, buf + have - carry, carry);
        if (regular && (size_t)n < want && want != BUFSZ)
            break;
    }
    /* (an incomplete character at the end is invalid bytes: they count for nothing) */
    c.words += c.in_word;
    r->lines = c.lines;
    r->words = c.words;
    r->bytes = c.bytes;
    return 0;
}

static int worker(void *arg)
{
    unsigned char *buf = malloc(BUFSZ + MB_LEN_MAX);
    if (buf == NULL)
        return -ENOMEM;
    while (next_file < nfiles) {
        int i = next_file++;
        struct result *r = &res[i];
        bool std_in = strcmp(names[i], "-") == 0;
        int fd = std_in ? 0 : weft_file_open(names[i], O_RDONLY, 0);
        if (fd < 0) {
            r->err = fd;
            /* coreutils stats every file first: an unreadable one still has a size */
            r->statted = weft_file_stat(names[i], &r->st) == 0;
            continue;
        }
        /* fstat of an open fd reads no data: made directly */
        r->statted = fstat(fd, &r->st) == 0;
        bool regular = r->statted && S_ISREG(r->st.st_mode);
        int e = count_fd(fd, r, buf, regular, regular ? r->st.st_size : -1);
        r->counted = true;
        if (e < 0)
            r->err = e;
        if (!std_in)
            weft_file_close(fd);
    }
    free(buf);
    return 0;
}

static int main_task(void *arg)
{
    int nw = nfiles < WORKERS ? nfiles : WORKERS;
    weft_task_t **t = calloc((size_t)nw, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (int i = 0; i < nw; i++) {
        int e = weft_spawn(&t[i], worker, NULL);
        if (e < 0)
            return e;
    }
    int err = weft_gather(t, (size_t)nw, NULL, 0);
    for (int i = 0; i < nw; i++)
        weft_task_release(t[i]);
    free(t);
    return err;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    multibyte = MB_CUR_MAX > 1;
    init_classes();
    bool pl = false, pw = false, pc = false;
    char *dash[] = {"-"};
    names = calloc((size_t)argc, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] != '\0') {
            for (const char *o = a + 1; *o; o++) {
                if (*o == 'l')
                    pl = true;
                else if (*o == 'w')
                    pw = true;
                else if (*o == 'c')
                    pc = true;
                else {
                    fprintf(stderr, "usage: wc [-l] [-w] [-c] [FILE...]\n");
                    return 2;
                }
            }
        } else {
            names[nfiles++] = argv[i];
        }
    }
    bool no_names = nfiles == 0;
    if (no_names) {
        free(names);
        names = dash;
        nfiles = 1;
    }
    if (!pl && !pw && !pc)
        pl = pw = pc = true;
    res = calloc((size_t)nfiles, sizeof(*res));
    int e = weft_run(main_task, NULL);
    if (e < 0) {
        fprintf(stderr, "wc: %s\n", weft_strerror(e));
        return 1;
    }
    /* Column width, as coreutils computes it. */
    int ncounts = pl + pw + pc;
    int width = 1;
    if (!(nfiles == 1 && ncounts == 1) && res[0].statted) {
        int minimum = 1;
        unsigned long long total = 0;
        for (int i = 0; i < nfiles; i++) {
            if (!res[i].statted)
                continue;
            if (!S_ISREG(res[i].st.st_mode))
                minimum = 7;
            else
                total += (unsigned long long)res[i].st.st_size;
        }
        for (; total >= 10; total /= 10)
            width++;
        if (width < minimum)
            width = minimum;
    }
    unsigned long long tl = 0, tw = 0, tc = 0;
    int status = 0;
    for (int i = 0; i < nfiles; i++) {
        struct result *r = &res[i];
        if (r->err < 0) {
            fflush(stdout); /* as coreutils: messages and lines in order */
            fprintf(stderr, "wc: %s: %s\n", no_names ? "standard input" : names[i],
                    strerror(-r->err));
            status = 1;
        }
        if (!r->counted)
            continue;
        const char *sep = "";
        if (pl) {
            printf("%s%*llu", sep, width, r->lines);
            sep = " ";
        }
        if (pw) {
            printf("%s%*llu", sep, width, r->words);
            sep = " ";
        }
        if (pc)
            printf("%s%*llu", sep, width, r->bytes);
        if (!no_names)
            printf(" %s", names[i]);
        putchar('\n');
        tl += r->lines;
        tw += r->words;
        tc += r->bytes;
    }
    if (nfiles > 1) {
        const char *sep = "";
        if (pl) {
            printf("%s%*llu", sep, width, tl);
            sep = " ";
        }
        if (pw) {
            printf("%s%*llu", sep, width, tw);
            sep = " ";
        }
        if (pc)
            printf("%s%*llu", sep, width, tc);
        printf(" total\n");
    }
    return status;
}
