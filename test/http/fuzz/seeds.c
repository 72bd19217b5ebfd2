/* Writes the fuzzer's seed corpus (the malformed corpus and well-formed requests) into DIR. */
#include <stdio.h>
#include <string.h>

#include "../corpus.h"

static const char *const good[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://a.example:80/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close, upgrade\r\nUpgrade: x\r\n\r\n",
};

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char path[4096];
    int k = 0;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++, k++) {
        snprintf(path, sizeof(path), "%s/good-%02zu", argv[1], i);
        FILE *f = fopen(path, "wb");
        if (f == NULL)
            return 1;
        fputc(0, f); /* the split-step byte */
        fwrite(good[i], 1, strlen(good[i]), f);
        fclose(f);
    }
    for (size_t i = 0; i < N_BAD; i++, k++) {
        snprintf(path, sizeof(path), "%s/bad-%s", argv[1], bad_corpus[i].name);
        FILE *f = fopen(path, "wb");
        if (f == NULL)
            return 1;
        fputc((int)i, f);
        fwrite(bad_corpus[i].req, 1, bad_len(&bad_corpus[i]), f);
        fclose(f);
    }
    printf("%d seeds\n", k);
    return 0;
}
