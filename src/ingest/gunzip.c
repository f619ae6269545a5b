/*
 * gunzip.c - a gzip body inflated under a limit (see gunzip.h).
 *
 * THREAD: any. zlib's inflate with a doubling buffer capped at max + 1
 * bytes, so a bomb stops at the limit instead of filling memory.
 */
#include "ingest/gunzip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

int te_gunzip(const char *in, size_t len, size_t max, char **out, size_t *out_len, char *msg,
              size_t cap)
{
    z_stream zs;
    size_t have = 0, size = len * 4 + 4096;
    int zrc = Z_OK, rc = 0;
    char *buf;

    if (size > max + 1)
        size = max + 1;
    buf = malloc(size + 1);
    if (!buf)
        return TE_ENOMEM;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return TE_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    for (;;) {
        if (have == size) {
            if (size > max) {
                snprintf(msg, cap, "decompressed body is over the %zu-byte limit (listen.max_body)",
                         max);
                rc = TE_ETOOBIG;
                break;
            }
            size_t nsize = size * 2 > max + 1 ? max + 1 : size * 2;
            char *nb = realloc(buf, nsize + 1);
            if (!nb) {
                rc = TE_ENOMEM;
                break;
            }
            buf = nb;
            size = nsize;
        }
        zs.next_out = (Bytef *)buf + have;
        zs.avail_out = (uInt)(size - have);
        zrc = inflate(&zs, Z_NO_FLUSH);
        have = size - zs.avail_out;
        if (zrc == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            inflateReset(&zs);   /* concatenated gzip members */
            continue;
        }
        if (zrc == Z_BUF_ERROR && zs.avail_in == 0) {
            snprintf(msg, cap, "bad gzip stream: unexpected end of data");
            rc = TE_EPARSE;
            break;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            snprintf(msg, cap, "bad gzip stream: %s", zs.msg ? zs.msg : "corrupt data");
            rc = TE_EPARSE;
            break;
        }
    }
    inflateEnd(&zs);
    if (rc == 0 && have > max) {
        snprintf(msg, cap, "decompressed body is over the %zu-byte limit (listen.max_body)", max);
        rc = TE_ETOOBIG;
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[have] = '\0';
    *out = buf;
    *out_len = have;
    return 0;
}
