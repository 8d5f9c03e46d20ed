/*
 * engine/util.c — byte buffers, secret wiping, percent/form/base64 encoding,
 * splitmix64 and the received-header list (see util.h). No I/O, no clock.
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Grows b so that n more bytes (plus a NUL) fit. */
static int buf_reserve(hyp_buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + n + 1) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

/* Appends n bytes. */
int hyp_buf_add(hyp_buf *b, const void *p, size_t n) {
  if (buf_reserve(b, n)) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* Appends a C string. */
int hyp_buf_adds(hyp_buf *b, const char *s) { return hyp_buf_add(b, s, strlen(s)); }

/* Appends one byte. */
int hyp_buf_addc(hyp_buf *b, char c) {
  if (b->len + 2 > b->cap && buf_reserve(b, 1)) return -1;
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
  return 0;
}

/* Appends printf-style text. */
int hyp_buf_addf(hyp_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n)) return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

/* Empties b, keeping its memory. */
void hyp_buf_reset(hyp_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

/* Releases b's memory (no wipe: see hyp_buf_wipe for buffers with secrets). */
void hyp_buf_free(hyp_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Wipes all of b's memory (it held a secret) and releases it. */
void hyp_buf_wipe(hyp_buf *b) {
  if (b->data) hyp_wipe(b->data, b->cap);
  hyp_buf_free(b);
}

/* strdup that accepts NULL. */
char *hyp_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* Overwrites n bytes with zeros in a way the compiler keeps. */
void hyp_wipe(void *p, size_t n) {
  if (!p || !n) return;
  memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory"); /* the memset is not dead */
}

/* Wipes, frees and clears a secret string. */
void hyp_free_secret(char **s) {
  if (*s) {
    hyp_wipe(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

static const char HEX[] = "0123456789ABCDEF";

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
int hyp_pct_encode(hyp_buf *b, const char *s, size_t n) {
  if (n > (SIZE_MAX - 1) / 3 - b->len || buf_reserve(b, 3 * n)) return -1; /* the most it takes */
  char *p = b->data + b->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      *p++ = (char)c;
    } else {
      *p++ = '%';
      *p++ = HEX[c >> 4];
      *p++ = HEX[c & 15];
    }
  }
  b->len = (size_t)(p - b->data);
  b->data[b->len] = '\0';
  return 0;
}

/* application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks for credentials. */
int hyp_form_encode(hyp_buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ') {
      if (hyp_buf_addc(b, '+')) return -1;
    } else if (unreserved(c) && c != '~') {
      if (hyp_buf_addc(b, (char)c)) return -1;
    } else {
      char e[3] = {'%', HEX[c >> 4], HEX[c & 15]};
      if (hyp_buf_add(b, e, 3)) return -1;
    }
  }
  return 0;
}

/* Standard base64 with padding. */
int hyp_base64(hyp_buf *b, const unsigned char *p, size_t n) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16;
    if (i + 1 < n) v |= (unsigned)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    char o[4] = {A[(v >> 18) & 63], A[(v >> 12) & 63], i + 1 < n ? A[(v >> 6) & 63] : '=',
                 i + 2 < n ? A[v & 63] : '='};
    if (hyp_buf_add(b, o, 4)) return -1;
  }
  return 0;
}

/* splitmix64 → a double in [0, 1). */
double hyp_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Appends a received header, lower-casing its name. A name or value holding
 * a NUL (a hostile server, a driver passing one on) is dropped: stored as is
 * it would shift the "name\0value\0" list and inject headers. Returns 0 (also
 * when dropped) or -1 (ENOMEM). */
int hyp_header_add(hyp_buf *h, const char *name, size_t nlen, const char *value, size_t vlen) {
  if (memchr(name, '\0', nlen) || memchr(value, '\0', vlen)) return 0;
  if (buf_reserve(h, nlen + vlen + 2)) return -1;
  char *p = h->data + h->len;
  for (size_t i = 0; i < nlen; i++) {
    char c = name[i];
    p[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  p[nlen] = '\0';
  memcpy(p + nlen + 1, value, vlen);
  p[nlen + 1 + vlen] = '\0';
  h->len += nlen + vlen + 2;
  h->data[h->len] = '\0';
  return 0;
}

/* The first value of a received header (name in lower case), or NULL. */
const char *hyp_header_get(const hyp_buf *h, const char *name) {
  const char *p = h->data, *end = p ? p + h->len : NULL; /* no NULL + 0 (UB) */
  while (p && p < end) {
    const char *v = p + strlen(p) + 1;
    if (v >= end) break;
    if (strcmp(p, name) == 0) return v;
    p = v + strlen(v) + 1;
  }
  return NULL;
}

