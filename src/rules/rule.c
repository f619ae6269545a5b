/*
 * rule.c - freeing script declarations, the C-side `where` matcher and
 * severity names.
 *
 * THREAD: loop (te_where_match is pure and may run on any thread that owns
 * the event). A `where` runs on every ingested event for every rule, so it
 * stays in C: equality against a short list, or a PCRE2 search for
 * te.match("re"). The regex is a search (unanchored, like Fluent Bit's grep
 * filter and Lua's string.find): authors anchor with ^...$ when they want
 * the whole value.
 */
#include "rule.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/event.h"

static void free_where(te_where_t *w, size_t n)
{
    if (!w)
        return;
    for (size_t i = 0; i < n; i++) {
        free(w[i].key);
        for (size_t j = 0; w[i].values && j < w[i].nvalues; j++)
            free(w[i].values[j]);
        free(w[i].values);
        free(w[i].pattern);
        pcre2_code_free((pcre2_code *)w[i].re); /* NULL-safe */
        pcre2_match_data_free((pcre2_match_data *)w[i].md);
    }
    free(w);
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void te_rule_def_free(te_rule_def_t *def)
{
    if (!def)
        return;
    free(def->name);
    free(def->kind);
    free_where(def->where, def->nwhere);
    free_strings(def->group_by, def->ngroup);
    for (size_t i = 0; def->aggs && i < def->naggs; i++) {
        free(def->aggs[i].name);
        free(def->aggs[i].field);
        free_where(def->aggs[i].filter, def->aggs[i].nfilter);
    }
    free(def->aggs);
    free(def->summary);
    free(def->method);
    free(def->stat);
    free_strings(def->label_keys, def->nlabels);
    free_strings(def->label_values, def->nlabels);
    free_strings(def->notify, def->nnotify);
    free(def);
}

static bool regex_search(const te_where_t *w, const char *value)
{
    pcre2_code *re = (pcre2_code *)w->re;
    /* the def's own match block (a def is used by one thread): no
     * allocation per event on the ingest path */
    pcre2_match_data *md = w->md;
    if (md)
        return pcre2_match(re, (PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
    md = pcre2_match_data_create(1, NULL);
    if (!md)
        return false;
    int rc = pcre2_match(re, (PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

bool te_where_match(const te_where_t *where, size_t n, const te_event_t *ev)
{
    for (size_t i = 0; i < n; i++) {
        const te_where_t *w = &where[i];
        const char *value = te_event_tag(ev, w->key);
        if (!value)
            return false;
        if (w->re) {
            if (!regex_search(w, value))
                return false;
            continue;
        }
        bool any = false;
        for (size_t j = 0; j < w->nvalues && !any; j++)
            any = strcmp(w->values[j], value) == 0;
        if (!any)
            return false;
    }
    return true;
}

static const char *const severity_names[] = {"info", "warning", "critical"};

int te_severity_parse(const char *s, te_severity_t *out)
{
    for (int i = 0; i < 3; i++) {
        if (s && strcmp(s, severity_names[i]) == 0) {
            *out = (te_severity_t)i;
            return 0;
        }
    }
    return TE_EINVAL;
}

const char *te_severity_name(te_severity_t s)
{
    if ((int)s < 0 || (int)s > 2)
        return "unknown";
    return severity_names[s];
}

static int cmp_agg(const void *a, const void *b)
{
    return strcmp(((const te_rule_agg_t *)a)->name, ((const te_rule_agg_t *)b)->name);
}

static int cmp_where(const void *a, const void *b)
{
    return strcmp(((const te_where_t *)a)->key, ((const te_where_t *)b)->key);
}

void te_rule_def_normalise(te_rule_def_t *def)
{
    if (def->naggs > 1)
        qsort(def->aggs, def->naggs, sizeof(*def->aggs), cmp_agg);
    if (def->nwhere > 1)
        qsort(def->where, def->nwhere, sizeof(*def->where), cmp_where);
    for (size_t k = 0; k < def->naggs; k++)
        if (def->aggs[k].nfilter > 1)
            qsort(def->aggs[k].filter, def->aggs[k].nfilter, sizeof(*def->aggs[k].filter),
                  cmp_where);
}
