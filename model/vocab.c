/* vocab: vocab.txt as an array of tokens (id -> text) plus an open-addressing
 * hash table (text -> id) whose slots carry the token's length, text offset
 * and 32 more bits of its hash, so that a lookup reads one slot and, only
 * when those match, the token's text: two cache lines, not four. Lookups run
 * for every word of every request, on a core that shares its cache with the
 * inference workers.
 *
 * Line rules: lines end with LF; one CR right before the LF (or before the
 * end of the file) is dropped, so CRLF files read the same as LF files. A
 * token is every other byte of its line, so it may contain spaces, NULs or
 * invalid UTF-8. An empty line is a valid, empty token: ids are line numbers,
 * so dropping it would shift every later id. No tokenizer ever looks up the
 * empty string, so such an entry only holds its id's place. A final line
 * without LF counts; a final LF does not start another (empty) line. */
#include "vocab.h"

#include "fnv1a.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The same bound as config.json's vocab_size; ids then fit int32_t easily. */
#define VOCAB_MAX_TOKENS (1u << 24)
/* Offsets and lengths are 32-bit in the slots. */
#define VOCAB_MAX_BYTES UINT32_MAX

typedef struct {
    uint32_t tag;    /* the hash's high 32 bits */
    int32_t id;      /* -1 = empty */
    uint32_t length; /* bytes of the token */
    uint32_t offset; /* start of the token in text */
} vocab_slot;

struct vocab {
    size_t n_tokens;
    char *text;        /* all tokens, each followed by NUL */
    size_t text_bytes; /* allocated bytes of text */
    size_t *offset;    /* (n_tokens) start of token i in text */
    vocab_slot *slots; /* (n_slots) */
    size_t n_slots;    /* power of two, >= 2 * n_tokens */
};

int vocab_parse(const void *buf, size_t len, vocab **out, char *err, size_t err_cap)
{
    *out = NULL;
    /* Checked before any byte is read. */
    if (len >= VOCAB_MAX_BYTES) {
        snprintf(err, err_cap, "vocab.txt: %zu bytes, more than the limit of %u", len,
                 VOCAB_MAX_BYTES - 1);
        return -1;
    }
    const char *s = buf;
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            n_lines++;
    if (len > 0 && s[len - 1] != '\n')
        n_lines++;
    if (n_lines == 0) {
        snprintf(err, err_cap, "vocab.txt: empty (no tokens)");
        return -1;
    }
    if (n_lines > VOCAB_MAX_TOKENS) {
        snprintf(err, err_cap, "vocab.txt: %zu lines, more than the limit of %u", n_lines,
                 VOCAB_MAX_TOKENS);
        return -1;
    }
    size_t n_slots = 2;
    while (n_slots < 2 * n_lines)
        n_slots *= 2;

    vocab *v = calloc(1, sizeof *v);
    if (v == NULL)
        goto oom;
    v->n_tokens = n_lines;
    v->n_slots = n_slots;
    /* len + 1 bytes hold every token and its NUL: each NUL takes the place of
     * its line's LF, and only the last line may lack one. */
    v->text_bytes = len + 1;
    v->text = malloc(v->text_bytes);
    v->offset = malloc(n_lines * sizeof *v->offset);
    v->slots = malloc(n_slots * sizeof *v->slots);
    if (v->text == NULL || v->offset == NULL || v->slots == NULL)
        goto oom;
    for (size_t i = 0; i < n_slots; i++)
        v->slots[i] = (vocab_slot){.tag = 0, .id = -1, .length = 0, .offset = 0};

    size_t at = 0, line_start = 0, id = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '\n')
            continue;
        if (i == len && line_start == len)
            break; /* the file ended with LF: no further line */
        size_t n = i - line_start;
        if (n > 0 && s[line_start + n - 1] == '\r')
            n--;
        memcpy(v->text + at, s + line_start, n);
        v->text[at + n] = '\0';
        v->offset[id] = at;
        at += n + 1;
        line_start = i + 1;

        /* Insert unless present: duplicates keep the first id. */
        const size_t mask = n_slots - 1;
        const uint64_t h = fnv1a_64(v->text + v->offset[id], n);
        const uint32_t tag = (uint32_t)(h >> 32);
        size_t slot = (size_t)h & mask;
        for (;;) {
            vocab_slot *e = &v->slots[slot];
            if (e->id < 0) {
                *e = (vocab_slot){.tag = tag,
                                  .id = (int32_t)id,
                                  .length = (uint32_t)n,
                                  .offset = (uint32_t)v->offset[id]};
                break;
            }
            if (e->tag == tag && e->length == n &&
                memcmp(v->text + e->offset, v->text + v->offset[id], n) == 0)
                break;
            slot = (slot + 1) & mask;
        }
        id++;
    }
    *out = v;
    return 0;

oom:
    vocab_free(v);
    snprintf(err, err_cap, "vocab.txt: out of memory for %zu tokens", n_lines);
    return -1;
}

void vocab_free(vocab *v)
{
    if (v == NULL)
        return;
    free(v->text);
    free(v->offset);
    free(v->slots);
    free(v);
}

size_t vocab_size(const vocab *v)
{
    return v->n_tokens;
}

int32_t vocab_lookup(const vocab *v, const char *tok, size_t len)
{
    const size_t mask = v->n_slots - 1;
    const uint64_t h = fnv1a_64(tok, len);
    const uint32_t tag = (uint32_t)(h >> 32);
    size_t slot = (size_t)h & mask;
    for (;;) {
        const vocab_slot *e = &v->slots[slot];
        if (e->id < 0)
            return -1;
        if (e->tag == tag && e->length == len && memcmp(v->text + e->offset, tok, len) == 0)
            return e->id;
        slot = (slot + 1) & mask;
    }
}

void vocab_prefetch(const vocab *v, uint64_t hash, int stage)
{
    const size_t mask = v->n_slots - 1;
    size_t slot = (size_t)hash & mask;
    if (stage == 0) {
        __builtin_prefetch(&v->slots[slot]);
        return;
    }
    /* As vocab_lookup, without reading the text: the first slot whose tag
     * matches (almost always the token's own) names the text to load. */
    const uint32_t tag = (uint32_t)(hash >> 32);
    for (size_t probes = 0; probes < v->n_slots; probes++) {
        const vocab_slot *e = &v->slots[slot];
        if (e->id < 0)
            return;
        if (e->tag == tag) {
            __builtin_prefetch(v->text + e->offset);
            return;
        }
        slot = (slot + 1) & mask;
    }
}

size_t vocab_bytes(const vocab *v)
{
    return sizeof *v + v->text_bytes + v->n_tokens * sizeof *v->offset +
           v->n_slots * sizeof *v->slots;
}

const char *vocab_token(const vocab *v, int32_t id)
{
    if (id < 0 || (size_t)id >= v->n_tokens)
        return NULL;
    return v->text + v->offset[id];
}
