/*
 * tail_pos.c - reading and atomically replacing the positions file (see
 * tail_pos.h).
 *
 * THREAD: any. No fsync: the file is replaced after each commit of a tail
 * batch, and rename(2) alone already survives a process crash; after a power
 * loss an older (or, on some file systems, empty) file makes the engine read
 * some lines again, which the tail documents as "at least once".
 */
#include "tail_pos.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static cJSON *entry_json(const te_tail_pos_entry_t *e)
{
    char num[32];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "path", e->path);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)e->pos.dev);
    cJSON_AddStringToObject(o, "dev", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)e->pos.ino);
    cJSON_AddStringToObject(o, "inode", num);
    cJSON_AddNumberToObject(o, "offset", (double)e->pos.off);
    cJSON_AddNumberToObject(o, "line", (double)e->pos.line);
    return o;
}

int te_tail_pos_write(const char *path, const te_tail_pos_entry_t *entries, size_t n,
                      te_err_t *err)
{
    char tmp[4096];
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "files") : NULL;
    bool oom = !arr || !cJSON_AddNumberToObject(root, "version", 1);
    for (size_t i = 0; !oom && i < n; i++) {
        cJSON *o = entry_json(&entries[i]);
        oom = !o || !cJSON_AddItemToArray(arr, o);
    }
    char *text = oom ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return te_err_set(err, TE_ENOMEM, "tail: out of memory writing %s", path);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        free(text);
        return te_err_set(err, TE_EIO, "tail: positions path too long: %s", path);
    }
    FILE *fp = fopen(tmp, "w");
    bool ok = fp && fputs(text, fp) >= 0 && fputc('\n', fp) != EOF && fflush(fp) == 0;
    int e = errno;
    if (fp && fclose(fp) != 0 && ok) {
        ok = false;
        e = errno;
    }
    free(text);
    if (ok && rename(tmp, path) == 0)
        return 0;
    if (ok)
        e = errno;
    unlink(tmp);
    return te_err_set(err, TE_EIO, "tail: cannot write %s: %s", path, strerror(e));
}

static uint64_t member_u64(const cJSON *o, const char *key, bool *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v->valuestring, &end, 10);
        if (errno == 0 && end != v->valuestring && *end == '\0')
            return n;
    } else if (cJSON_IsNumber(v) && v->valuedouble >= 0) {
        return (uint64_t)v->valuedouble;
    }
    *ok = false;
    return 0;
}

/* The whole file into a malloc'd buffer; NULL with *e set on failure. */
static char *slurp(FILE *fp, size_t *len, int *e)
{
    char *text = NULL;
    size_t cap = 0, n;
    char chunk[4096];
    *len = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (*len + n + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            while (ncap < *len + n + 1)
                ncap *= 2;
            char *p = realloc(text, ncap);
            if (!p) {
                free(text);
                *e = ENOMEM;
                return NULL;
            }
            text = p;
            cap = ncap;
        }
        memcpy(text + *len, chunk, n);
        *len += n;
    }
    if (ferror(fp)) {
        free(text);
        *e = EIO;
        return NULL;
    }
    return text ? text : strdup("");
}

int te_tail_pos_read(const char *path, te_tail_pos_cb cb, void *ud, te_err_t *err)
{
    size_t len;
    int e = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        return te_err_set(err, TE_EIO, "tail: cannot read %s: %s", path, strerror(errno));
    }
    char *text = slurp(fp, &len, &e);
    fclose(fp);
    if (!text)
        return te_err_set(err, TE_EIO, "tail: cannot read %s: %s", path, strerror(e));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    /* only white space may follow the object (a half-written file is not one) */
    while (root && end && end < text + len && strchr(" \t\r\n", *end) && *end)
        end++;
    if (root && end != text + len) {
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(root);
        return te_err_set(err, TE_EPARSE, "tail: %s is not a positions file (no \"files\" "
                          "list)", path);
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *fpath = cJSON_GetObjectItemCaseSensitive(o, "path");
        bool ok = cJSON_IsString(name) && cJSON_IsString(fpath);
        te_tail_pos_t p = {.set = true};
        p.dev = member_u64(o, "dev", &ok);
        p.ino = member_u64(o, "inode", &ok);
        p.off = member_u64(o, "offset", &ok);
        p.line = member_u64(o, "line", &ok);
        if (ok)
            cb(ud, name->valuestring, fpath->valuestring, &p);
    }
    cJSON_Delete(root);
    return 0;
}
