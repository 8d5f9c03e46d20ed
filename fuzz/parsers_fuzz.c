/*
 * fuzz/parsers_fuzz.c — libFuzzer target for the engine's parsers, linked
 * with csrc/engine/ alone. The first byte picks one; the rest is its input:
 *   0  rate-limit headers ("name: value" lines): hyp_rate_update twice,
 *      hyp_rate_delay, hyp_retry_after, hyp_rate_reset — every wait finite,
 *      never negative, at most a day; counts at most 1e9
 *   1  base/token/proxy URL: hyp_check_url, hyp_has_userinfo,
 *      hyp_loopback_url — an accepted URL has no user info, an accepted
 *      http:// URL is loopback; hyp_url_shown — never longer than the URL,
 *      no query, fragment or user info in what it shows (nor when cut short)
 *   2  token answer JSON: hyp_tokjson_parse, hyp_token_accept — lengths
 *      agree, an installed token has no control byte, a finite lifetime
 *   3  encodings: hyp_pct_encode / hyp_form_encode decode back to the input
 *      and use only unreserved bytes and %XX; hyp_base64's length
 * Abort on any violation (and the sanitizers on any memory error).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../csrc/engine/ratelimit.h"
#include "../csrc/engine/token.h"
#include "../csrc/engine/tokjson.h"
#include "../csrc/engine/urls.h"
#include "../csrc/engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENSURE(cond)                                                                  \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "parsers_fuzz: invariant failed at %s:%d: %s\n", __FILE__,     \
              __LINE__, #cond);                                                       \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

#define DAY 86400.0

/* A wait as the engine may ask for it: finite, >= 0, at most a day (or < 0: none). */
static void sane_wait(double w, int may_be_none) {
  ENSURE(!isnan(w));
  if (may_be_none && w < 0) return;
  ENSURE(w >= 0 && w <= DAY);
}

/* "name: value" lines (LF or CRLF) into a received-header list. */
static void headers_of(const char *s, size_t n, hyp_buf *h) {
  size_t i = 0;
  while (i < n) {
    size_t e = i;
    while (e < n && s[e] != '\n') e++;
    size_t le = e;
    if (le > i && s[le - 1] == '\r') le--;
    const char *colon = memchr(s + i, ':', le - i);
    if (colon) {
      size_t nl = (size_t)(colon - (s + i));
      const char *v = colon + 1;
      while (v < s + le && *v == ' ') v++;
      hyp_header_add(h, s + i, nl, v, (size_t)(s + le - v));
    }
    i = e + 1;
  }
}

static void rate(const char *s, size_t n) {
  hyp_buf h = {NULL, 0, 0};
  headers_of(s, n, &h);
  static const double NOW[] = {0, 1000, 1.7e9, 1e15};
  double now = NOW[n % 4];
  hyp_rate r;
  hyp_rate_init(&r);
  hyp_rate_update(&r, &h, now, NULL);
  ENSURE(r.limit <= 1000000000L && r.remaining <= 1000000000L);
  ENSURE(!isnan(r.window) && r.window >= 0 && r.window <= DAY);
  ENSURE(memchr(r.policy, 0, sizeof r.policy));
  sane_wait(hyp_rate_delay(&r, now), 0);
  sane_wait(hyp_rate_delay(&r, now + 0.5), 0);
  sane_wait(hyp_rate_delay(&r, now - 100), 0);
  hyp_rate_update(&r, &h, now + 1, NULL); /* the same answer again, a second later */
  sane_wait(hyp_rate_delay(&r, now + 1), 0);
  sane_wait(hyp_retry_after(&h, now), 1);
  sane_wait(hyp_rate_reset(&h, now, 0), 1);
  sane_wait(hyp_rate_reset(&h, now, r.window), 1);
  hyp_buf_free(&h);
}

static void urls(const char *s, size_t n) {
  char *u = malloc(n + 1);
  if (!u) return;
  memcpy(u, s, n);
  u[n] = 0;
  const char *why = hyp_check_url(u);
  int userinfo = hyp_has_userinfo(u);
  int loop = hyp_loopback_url(u);
  if (!why) {
    ENSURE(!userinfo);
    if (strncmp(u, "http://", 7) == 0) ENSURE(loop);
    ENSURE(!strpbrk(u, " \t\r\n"));
  }
  char *shown = malloc(n + 1), small[8];
  if (shown) {
    size_t len = hyp_url_shown(u, shown, n + 1), cut = hyp_url_shown(u, small, sizeof small);
    ENSURE(len == strlen(shown) && len <= strlen(u));
    ENSURE(!strpbrk(shown, "?#") && !hyp_has_userinfo(shown));
    ENSURE(cut == strlen(small) && cut < sizeof small && strncmp(small, shown, cut) == 0);
    free(shown);
  }
  free(u);
}

static void token(const char *s, size_t n) {
  hyp_tokfields f;
  const char *why = NULL;
  if (hyp_tokjson_parse(s, n, &f, &why) == 0) {
    if (f.access_token) ENSURE(f.access_token[f.access_len] == 0);
    if (f.token_type) ENSURE(f.token_type[f.type_len] == 0);
    if (f.scope) ENSURE(f.scope[f.scope_len] == 0);
    hyp_tokfields_free(&f);
  } else {
    ENSURE(why != NULL);
  }
  hyp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.scope = "users.read";
  hyp_token t;
  memset(&t, 0, sizeof t);
  char msg[200];
  if (hyp_token_accept(&t, &cfg, s, n, 1000, msg, sizeof msg) == 0) {
    ENSURE(t.access_token && !hyp_token_problem(t.access_token, strlen(t.access_token)));
    ENSURE(isfinite(t.expires_at) && isfinite(t.lifetime) && t.lifetime >= 0);
    (void)hyp_token_usable(&t, 1000);
  } else {
    ENSURE(memchr(msg, 0, sizeof msg));
  }
  hyp_token_free(&t);
}

static int unhex(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes b (percent-encoding; '+' as space when form) and compares with s. */
static void roundtrip(const hyp_buf *b, const char *s, size_t n, int form) {
  size_t j = 0;
  for (size_t i = 0; i < b->len; i++, j++) {
    unsigned char c = (unsigned char)b->data[i];
    int d;
    if (c == '%') {
      ENSURE(i + 2 < b->len);
      int hi = unhex(b->data[i + 1]), lo = unhex(b->data[i + 2]);
      ENSURE(hi >= 0 && lo >= 0);
      d = hi * 16 + lo;
      i += 2;
    } else if (form && c == '+') {
      d = ' ';
    } else {
      ENSURE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c));
      d = c;
    }
    ENSURE(j < n && (unsigned char)s[j] == d);
  }
  ENSURE(j == n);
}

static void encodings(const char *s, size_t n) {
  hyp_buf b = {NULL, 0, 0};
  if (hyp_pct_encode(&b, s, n) == 0) roundtrip(&b, s, n, 0);
  hyp_buf_reset(&b);
  if (hyp_form_encode(&b, s, n) == 0) roundtrip(&b, s, n, 1);
  hyp_buf_reset(&b);
  if (hyp_base64(&b, (const unsigned char *)s, n) == 0) ENSURE(b.len == (n + 2) / 3 * 4);
  hyp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 4) {
  case 0: rate(s, n); break;
  case 1: urls(s, n); break;
  case 2: token(s, n); break;
  default: encodings(s, n); break;
  }
  return 0;
}
