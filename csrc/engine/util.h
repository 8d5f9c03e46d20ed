/*
 * engine/util.h — byte buffers, secrets, encodings, a seeded random source and
 * the received-header list: the helpers every layer uses. Pure C99 + libc.
 */
#ifndef HYP_ENGINE_UTIL_H
#define HYP_ENGINE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define HYP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HYP_PRINTF(a, b)
#endif

/* A growable byte buffer; data is always NUL-terminated when non-NULL. */
typedef struct hyp_buf {
  char *data;
  size_t len, cap;
} hyp_buf;

int hyp_buf_add(hyp_buf *b, const void *p, size_t n);          /* 0 | -1 (ENOMEM) */
int hyp_buf_adds(hyp_buf *b, const char *s);
int hyp_buf_addc(hyp_buf *b, char c);
int hyp_buf_addf(hyp_buf *b, const char *fmt, ...) HYP_PRINTF(2, 3);
void hyp_buf_reset(hyp_buf *b);                                 /* len = 0, keeps memory */
void hyp_buf_free(hyp_buf *b);                                  /* frees (no wipe) */
void hyp_buf_wipe(hyp_buf *b);                                  /* wipes, then frees */

char *hyp_strdup(const char *s);                                /* NULL on ENOMEM or NULL s */
void hyp_wipe(void *p, size_t n);                               /* memset that is not elided */
void hyp_free_secret(char **s);                                 /* wipe + free + NULL */

/* Percent-encoding. hyp_pct_encode keeps RFC 3986 unreserved characters;
 * hyp_form_encode is application/x-www-form-urlencoded (space as '+'). */
int hyp_pct_encode(hyp_buf *b, const char *s, size_t n);
int hyp_form_encode(hyp_buf *b, const char *s, size_t n);
int hyp_base64(hyp_buf *b, const unsigned char *p, size_t n);

/* A number in [0, 1) from a splitmix64 state (the caller seeds it). */
double hyp_random(uint64_t *state);

/* Received headers: "name\0value\0" pairs, names lower-cased. A name or value
 * holding NUL is dropped (it would shift the list). 0 | -1 (ENOMEM). */
int hyp_header_add(hyp_buf *h, const char *name, size_t nlen, const char *value, size_t vlen);
const char *hyp_header_get(const hyp_buf *h, const char *name);  /* first value or NULL */

#endif
