/*
 * engine/tokjson.c — a strict JSON reader (RFC 8259) for one job: the token
 * answer. Recursive descent over the bytes, nesting limited to MAX_DEPTH, no
 * allocation but for the few strings kept. See tokjson.h.
 */
#include "tokjson.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_DEPTH 256

typedef struct rd {
  const char *p, *end;
  int depth;
} rd;

/* Skips JSON white space. */
static void ws(rd *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

/* Value of one hex digit, or -1. */
static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* Appends code point cp as UTF-8. */
static int put_utf8(hyp_buf *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return hyp_buf_add(b, u, n);
}

/* Reads a string (at its opening quote); its decoded bytes go to out when out
 * is not NULL. Returns 0 or -1 (malformed or ENOMEM). */
static int string(rd *r, hyp_buf *out) {
  r->p++; /* the quote */
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') {
      r->p++;
      return 0;
    }
    if (c < 0x20) return -1;
    if (c != '\\') {
      const char *run = r->p;
      while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20) r->p++;
      if (out && hyp_buf_add(out, run, (size_t)(r->p - run))) return -1;
      continue;
    }
    if (r->end - r->p < 2) return -1;
    char e = r->p[1];
    r->p += 2;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      if (out && hyp_buf_addc(out, to[simple - "\"\\/bfnrt"])) return -1;
      continue;
    }
    if (e != 'u' || r->end - r->p < 4) return -1;
    long cp = hex4(r->p);
    if (cp < 0) return -1;
    r->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate needs its low half */
      if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') return -1;
      long lo = hex4(r->p + 2);
      if (lo < 0xDC00 || lo > 0xDFFF) return -1;
      r->p += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return -1;
    }
    if (out && put_utf8(out, (unsigned long)cp)) return -1;
  }
  return -1;
}

/* Reads a number; its value goes to *v when v is not NULL. 0 or -1. */
static int number(rd *r, double *v) {
  const char *s = r->p;
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p >= r->end) return -1;
  if (*r->p == '0') {
    r->p++;
  } else if (*r->p >= '1' && *r->p <= '9') {
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  } else {
    return -1;
  }
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return -1;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return -1;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  }
  if (v) {
    char tmp[64];
    size_t n = (size_t)(r->p - s);
    if (n >= sizeof tmp) { /* very long digit runs: strtod on a heap copy */
      char *big = malloc(n + 1);
      if (!big) return -1;
      memcpy(big, s, n);
      big[n] = '\0';
      *v = strtod(big, NULL);
      free(big);
    } else {
      memcpy(tmp, s, n);
      tmp[n] = '\0';
      *v = strtod(tmp, NULL);
    }
  }
  return 0;
}

static int value(rd *r);

/* Reads the literal word w. */
static int literal(rd *r, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) return -1;
  r->p += n;
  return 0;
}

/* Reads an array or an object (at its opening bracket), checking and
 * dropping its contents. */
static int container(rd *r) {
  char close = *r->p == '[' ? ']' : '}';
  if (++r->depth > MAX_DEPTH) return -1;
  r->p++;
  ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    r->depth--;
    return 0;
  }
  for (;;) {
    if (close == '}') {
      if (r->p >= r->end || *r->p != '"' || string(r, NULL)) return -1;
      ws(r);
      if (r->p >= r->end || *r->p != ':') return -1;
      r->p++;
      ws(r);
    }
    if (value(r)) return -1;
    ws(r);
    if (r->p >= r->end) return -1;
    if (*r->p == close) {
      r->p++;
      r->depth--;
      return 0;
    }
    if (*r->p != ',') return -1;
    r->p++;
    ws(r);
  }
}

/* Reads any value, keeping nothing. */
static int value(rd *r) {
  if (r->p >= r->end) return -1;
  switch (*r->p) {
  case '"': return string(r, NULL);
  case '[':
  case '{': return container(r);
  case 't': return literal(r, "true");
  case 'f': return literal(r, "false");
  case 'n': return literal(r, "null");
  default: return number(r, NULL);
  }
}

/* Moves the decoded string in b to *dst and its length to *len (replacing what was there). */
static void keep(hyp_buf *b, char **dst, size_t *len, int secret) {
  if (secret && *dst) hyp_wipe(*dst, *len); /* may hold NUL: wipe by length */
  free(*dst);
  *dst = b->data ? b->data : hyp_strdup("");
  *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
}

/* See tokjson.h. */
int hyp_tokjson_parse(const char *s, size_t n, hyp_tokfields *f, const char **why) {
  memset(f, 0, sizeof *f);
  rd r = {s ? s : "", (s ? s : "") + (s ? n : 0), 0};
  hyp_buf key = {NULL, 0, 0}, str = {NULL, 0, 0};
  *why = "is not valid JSON";
  ws(&r);
  if (r.p >= r.end) goto bad;
  if (*r.p != '{') {
    if (value(&r)) goto bad;
    ws(&r);
    if (r.p != r.end) goto bad;
    *why = "is not a JSON object";
    goto bad;
  }
  r.p++;
  r.depth = 1;
  ws(&r);
  if (r.p < r.end && *r.p == '}') {
    r.p++;
  } else {
    for (;;) {
      hyp_buf_reset(&key);
      if (r.p >= r.end || *r.p != '"' || string(&r, &key)) goto bad;
      ws(&r);
      if (r.p >= r.end || *r.p != ':') goto bad;
      r.p++;
      ws(&r);
      const char *k = key.data ? key.data : "";
      int is_access = key.len == 12 && memcmp(k, "access_token", 12) == 0;
      int is_type = key.len == 10 && memcmp(k, "token_type", 10) == 0;
      int is_scope = key.len == 5 && memcmp(k, "scope", 5) == 0;
      int is_expires = key.len == 10 && memcmp(k, "expires_in", 10) == 0;
      if (r.p < r.end && *r.p == '"' && (is_access || is_type || is_scope)) {
        hyp_buf_reset(&str);
        if (string(&r, &str)) goto bad;
        if (is_access) keep(&str, &f->access_token, &f->access_len, 1);
        else if (is_type) keep(&str, &f->token_type, &f->type_len, 0);
        else keep(&str, &f->scope, &f->scope_len, 0);
      } else if (is_expires && r.p < r.end && (*r.p == '-' || (*r.p >= '0' && *r.p <= '9'))) {
        if (number(&r, &f->expires_in)) goto bad;
        f->has_expires_in = 1;
      } else {
        /* another member, or one of ours of another type: it counts as absent */
        if (value(&r)) goto bad;
        if (is_access) hyp_wipe(f->access_token, f->access_len), free(f->access_token),
            f->access_token = NULL, f->access_len = 0;
        if (is_type) free(f->token_type), f->token_type = NULL, f->type_len = 0;
        if (is_scope) free(f->scope), f->scope = NULL, f->scope_len = 0;
        if (is_expires) f->has_expires_in = 0;
      }
      ws(&r);
      if (r.p >= r.end) goto bad;
      if (*r.p == '}') {
        r.p++;
        break;
      }
      if (*r.p != ',') goto bad;
      r.p++;
      ws(&r);
    }
  }
  ws(&r);
  if (r.p != r.end) goto bad;
  hyp_buf_free(&key);
  hyp_buf_wipe(&str);
  *why = NULL;
  return 0;
bad:
  hyp_buf_free(&key);
  hyp_buf_wipe(&str);
  hyp_tokfields_free(f);
  return -1;
}

/* See tokjson.h. */
void hyp_tokfields_free(hyp_tokfields *f) {
  hyp_wipe(f->access_token, f->access_len);
  free(f->access_token);
  free(f->token_type);
  free(f->scope);
  memset(f, 0, sizeof *f);
}
