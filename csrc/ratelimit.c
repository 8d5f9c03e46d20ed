/*
 * ratelimit.c — what the server says about its quota, and what the client
 * does with it.
 *
 * Read on every response: x-ratelimit-limit ("10, 10;w=1"),
 * x-ratelimit-remaining, x-ratelimit-reset (delta seconds; a value above 1e9
 * is taken as a Unix time), the IETF draft fields (RateLimit-Limit/-Remaining/
 * -Reset, "RateLimit: limit=10, remaining=9, reset=1" and the newer
 * "RateLimit: "default";r=9;t=1" with RateLimit-Policy "q=10;w=1"), and on
 * 429/5xx Retry-After (seconds or an HTTP date). Malformed values are ignored.
 *
 * Pacing (hyp_rate_delay): no delay while at least half the quota remains;
 * below that the remaining requests are spread evenly over the time left in
 * the window; at zero the next request waits for the reset. The reset time is
 * kept as the tightest upper bound seen in the current window, since servers
 * send it rounded up to whole seconds.
 */
#define _GNU_SOURCE
#include "hypatos.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Resets r to "nothing known". */
void hyp_rate_init(hyp_rate *r) {
  memset(r, 0, sizeof *r);
  r->limit = r->remaining = -1;
}

/* Parses a non-negative decimal number at s; returns -1 when there is none. */
static double parse_num(const char *s) {
  if (!s) return -1;
  while (*s == ' ' || *s == '\t' || *s == '"') s++;
  if (!isdigit((unsigned char)*s)) return -1;
  char *end;
  double v = strtod(s, &end);
  while (*end == ' ' || *end == '\t' || *end == '"') end++;
  if (*end && *end != ',' && *end != ';') return -1;
  return v;
}

/* Value of a "key=value" parameter inside a structured header, or -1. */
static double param(const char *h, const char *key) {
  size_t k = strlen(key);
  for (const char *p = h; p && *p; p++) {
    if ((p == h || p[-1] == ' ' || p[-1] == ';' || p[-1] == ',') && strncasecmp(p, key, k) == 0 &&
        p[k] == '=')
      return parse_num(p + k + 1);
  }
  return -1;
}

/* Delta seconds from a reset value (delta, or a Unix time when huge). */
static double reset_delta(double v, double now) {
  if (v < 0) return -1;
  if (v > 1e9) v -= now;
  return v < 0 ? 0 : v;
}

/* The rate-limit headers of one response, found in one pass. */
typedef struct rl_fields {
  const char *xlimit, *xremaining, *xreset, *limit, *remaining, *reset, *combined, *policy;
} rl_fields;

static void find_fields(const hyp_buf *h, rl_fields *f) {
  memset(f, 0, sizeof *f);
  const char *p = h->data, *end = h->data + h->len;
  while (p && p < end) {
    size_t nlen = strlen(p);
    const char *v = p + nlen + 1;
    if (v >= end) break;
    const char *n = p;
    p = v + strlen(v) + 1;
    if (n[0] == 'x' && nlen > 12 && strncmp(n, "x-ratelimit-", 12) == 0) {
      const char *t = n + 12;
      if (!f->xlimit && !strcmp(t, "limit")) f->xlimit = v;
      else if (!f->xremaining && !strcmp(t, "remaining")) f->xremaining = v;
      else if (!f->xreset && !strcmp(t, "reset")) f->xreset = v;
    } else if (n[0] == 'r' && nlen >= 9 && strncmp(n, "ratelimit", 9) == 0) {
      const char *t = n + 9;
      if (!*t) { if (!f->combined) f->combined = v; }
      else if (!f->limit && !strcmp(t, "-limit")) f->limit = v;
      else if (!f->remaining && !strcmp(t, "-remaining")) f->remaining = v;
      else if (!f->reset && !strcmp(t, "-reset")) f->reset = v;
      else if (!f->policy && !strcmp(t, "-policy")) f->policy = v;
    }
  }
}

/* Updates r from the headers of a response received at now. */
void hyp_rate_update(hyp_rate *r, const hyp_buf *h, double now) {
  double limit = -1, remaining = -1, reset = -1, window = -1;
  rl_fields f;
  find_fields(h, &f);
  const char *v;

  if ((v = f.xlimit)) {
    limit = parse_num(v);
    const char *w = strstr(v, ";w=");
    if (w) window = parse_num(w + 3);
    snprintf(r->policy, sizeof r->policy, "%s", v);
  }
  if ((v = f.xremaining)) remaining = parse_num(v);
  if ((v = f.xreset)) reset = reset_delta(parse_num(v), now);

  /* IETF drafts, used only where the x- fields are absent */
  if (limit < 0 && (v = f.limit)) limit = parse_num(v);
  if (remaining < 0 && (v = f.remaining)) remaining = parse_num(v);
  if (reset < 0 && (v = f.reset)) reset = reset_delta(parse_num(v), now);
  if ((v = f.combined)) {
    if (limit < 0) limit = param(v, "limit");
    if (remaining < 0) remaining = param(v, "remaining");
    if (remaining < 0) remaining = param(v, "r");
    if (reset < 0) reset = reset_delta(param(v, "reset"), now);
    if (reset < 0) reset = reset_delta(param(v, "t"), now);
  }
  if ((v = f.policy)) {
    if (limit < 0) limit = parse_num(v);
    if (limit < 0) limit = param(v, "q");
    if (window < 0) window = param(v, "w");
    if (!f.xlimit) snprintf(r->policy, sizeof r->policy, "%s", v);
  }

  if (limit >= 0) r->limit = (long)limit;
  if (window > 0) r->window = window;
  if (remaining >= 0 && reset >= 0) {
    double upper = now + reset;
    /* same window: the count went down and the old reset is still ahead */
    int same = r->reset_at > now && r->remaining >= 0 && (long)remaining <= r->remaining;
    r->reset_at = same && r->reset_at < upper ? r->reset_at : upper;
    r->remaining = (long)remaining;
  } else if (remaining >= 0) {
    r->remaining = (long)remaining;
  }
  if (limit >= 0 || remaining >= 0 || reset >= 0) r->known = 1;
}

/* Seconds to wait before the next request may go out (0 = now). */
double hyp_rate_delay(const hyp_rate *r, double now) {
  if (!r->known || r->remaining < 0 || r->reset_at <= 0) return 0;
  double left = r->reset_at - now;
  if (left <= 0) return 0;                       /* the window is over */
  if (r->remaining <= 0) return left + 0.005;    /* wait for the reset */
  if (r->limit > 0 && r->remaining * 2 >= r->limit) return 0;
  double next = r->last_send + left / (double)(r->remaining + 1);
  return next > now ? next - now : 0;
}

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 when invalid. */
static double http_date(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end) return -1;
  return (double)timegm(&tm);
}

/* Seconds a Retry-After header asks to wait (seconds or an HTTP date), or -1. */
double hyp_retry_after(const hyp_buf *h, double now) {
  const char *v = hyp_header_get(h, "retry-after");
  if (!v) return -1;
  double s = parse_num(v);
  if (s < 0) {
    double t = http_date(v);
    if (t >= 0) s = t > now ? t - now : 0;
  }
  return s;
}

/* Seconds until the quota window resets, from x-ratelimit-reset or the IETF
 * fields, or -1. Decides a wait only for a 429 (see engine.c). */
double hyp_rate_reset(const hyp_buf *h, double now) {
  const char *v;
  double reset = -1;
  if ((v = hyp_header_get(h, "x-ratelimit-reset"))) reset = reset_delta(parse_num(v), now);
  if (reset < 0 && (v = hyp_header_get(h, "ratelimit-reset")))
    reset = reset_delta(parse_num(v), now);
  if (reset < 0 && (v = hyp_header_get(h, "ratelimit"))) {
    reset = reset_delta(param(v, "reset"), now);
    if (reset < 0) reset = reset_delta(param(v, "t"), now);
  }
  return reset;
}

/* Pushes {limit, remaining, reset, reset_at, window, policy} or nil. */
void hyp_rate_push(lua_State *L, const hyp_rate *r, double now) {
  if (!r->known) {
    lua_pushnil(L);
    return;
  }
  lua_createtable(L, 0, 6);
  if (r->limit >= 0) {
    lua_pushinteger(L, r->limit);
    lua_setfield(L, -2, "limit");
  }
  if (r->remaining >= 0) {
    lua_pushinteger(L, r->remaining);
    lua_setfield(L, -2, "remaining");
  }
  if (r->reset_at > 0) {
    lua_pushnumber(L, r->reset_at > now ? r->reset_at - now : 0);
    lua_setfield(L, -2, "reset");
    lua_pushnumber(L, r->reset_at);
    lua_setfield(L, -2, "reset_at");
  }
  if (r->window > 0) {
    lua_pushnumber(L, r->window);
    lua_setfield(L, -2, "window");
  }
  if (r->policy[0]) {
    lua_pushstring(L, r->policy);
    lua_setfield(L, -2, "policy");
  }
}
