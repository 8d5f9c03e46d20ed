/*
 * engine/ratelimit.c — what the server says about its quota, and what the client
 * does with it.
 *
 * Read on every response: x-ratelimit-limit ("10, 10;w=1"),
 * x-ratelimit-remaining, x-ratelimit-reset (delta seconds; a value above 1e9
 * is taken as a Unix time, above 1e11 as one in milliseconds), the IETF draft fields (RateLimit-Limit/-Remaining/
 * -Reset, "RateLimit: limit=10, remaining=9, reset=1" and the newer
 * "RateLimit: "default";r=9;t=1" with RateLimit-Policy "q=10;w=1"), and on
 * 429/5xx Retry-After (seconds or an HTTP date). Malformed values are ignored.
 *
 * One answer must not be able to stop a client for good (nothing is sent
 * while the quota looks used up, so the state would never clear): a reset
 * more than a day away is not believed (ignored), a believable one is
 * clamped to the window the same answer (or an earlier one) announced, else
 * to the API's longest window, 60 s. Counts are clamped to 1e9 and windows
 * above a day ignored before any cast; Retry-After is capped at a day.
 *
 * When several clients pace alone on one quota (the shared store is down),
 * each takes its share: the limit and what remains divided by their number.
 *
 * Until the first answer is back nothing is known of the quota (a client that
 * took its token from a cache sends its first request cold, maybe in the
 * middle of a window someone else has nearly used up): one request goes first
 * and the others wait for its answer (at most HYP_RATE_FIRST_WAIT seconds, in
 * case it is a long upload).
 *
 * Pacing (hyp_rate_delay) counts the requests in flight as used: the quota
 * left is `remaining` (from the latest answer) minus the requests not
 * answered yet, so many calls at once (client:map) stay within it. No delay
 * while at least half the quota is left; below that the rest is spread evenly
 * over the time left in the window; at zero the next request waits for the
 * reset. The reset time is kept as the tightest upper bound seen in the
 * current window, since servers send it rounded up to whole seconds; an
 * answer belongs to a new window when its `remaining` is more than the last
 * one plus the requests in flight (answers of one window may arrive out of
 * order). When the window is over before any answer of the next one has
 * arrived, a fresh window is assumed: the whole limit, the last window's
 * length; the waiters then go out half at once and the rest spread, instead
 * of all together.
 */
#define _GNU_SOURCE
#include "ratelimit.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BELIEVED 86400.0 /* longest reset, window or Retry-After believed (s) */
#define MAX_WINDOW 60.0      /* the API's longest window: the clamp without a window */
#define MAX_COUNT 1e9        /* limit and remaining are clamped to this before a cast */

/* Resets r to "nothing known". */
void hyp_rate_init(hyp_rate *r) {
  memset(r, 0, sizeof *r);
  r->limit = r->remaining = -1;
  r->share = 1;
}

/* Parses a non-negative decimal number at s; returns -1 when there is none. */
static double parse_num(const char *s) {
  if (!s) return -1;
  while (*s == ' ' || *s == '\t' || *s == '"') s++;
  if (!isdigit((unsigned char)*s)) return -1;
  char *end;
  double v = 0;
  const char *p = s;
  while (isdigit((unsigned char)*p) && p - s < 15) v = v * 10 + (*p++ - '0'); /* exact: < 2^53 */
  if (*p == '.' || *p == 'e' || *p == 'E' || isdigit((unsigned char)*p))
    v = strtod(s, &end); /* a fraction, an exponent or a long number: the full reader */
  else
    end = (char *)p;
  while (*end == ' ' || *end == '\t' || *end == '"') end++;
  if (*end && *end != ',' && *end != ';') return -1;
  return isfinite(v) ? v : -1;
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

/* Delta seconds from a reset value (delta, or a Unix time when huge), or -1
 * when absent or not believable; clamped to window (0: unknown, then 60 s). */
static double reset_delta(double v, double now, double window) {
  if (!(v >= 0)) return -1;
  if (v >= 1e11) v /= 1000; /* a Unix time in milliseconds */
  if (v > 1e9) v -= now;    /* a Unix time in seconds */
  if (v < 0) v = 0;
  if (v > MAX_BELIEVED) return -1;
  double cap = window > 0 ? window : MAX_WINDOW;
  return v > cap ? cap : v;
}

/* A policy window in seconds, or -1 when absent or above a day. */
static double sane_window(double w) { return w > 0 && w <= MAX_BELIEVED ? w : -1; }

/* A count clamped for a cast to long (-1 stays "unknown"). */
static double sane_count(double n) { return n > MAX_COUNT ? MAX_COUNT : n; }

/* The rate-limit headers of one response, found in one pass. */
typedef struct rl_fields {
  const char *xlimit, *xremaining, *xreset, *limit, *remaining, *reset, *combined, *policy;
} rl_fields;

static void find_fields(const hyp_buf *h, rl_fields *f) {
  memset(f, 0, sizeof *f);
  const char *p = h->data, *end = p ? p + h->len : NULL; /* no NULL + 0 (UB) */
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

/* The policy window announced by headers f, or -1. */
static double window_of(const rl_fields *f) {
  double window = -1;
  const char *w;
  if (f->xlimit && (w = strstr(f->xlimit, ";w="))) window = sane_window(parse_num(w + 3));
  if (window < 0 && f->policy) window = sane_window(param(f->policy, "w"));
  return window;
}

/* The reset (delta seconds, see reset_delta) announced by headers f, or -1. */
static double reset_of(const rl_fields *f, double now, double window) {
  double reset = -1;
  if (f->xreset) reset = reset_delta(parse_num(f->xreset), now, window);
  if (reset < 0 && f->reset) reset = reset_delta(parse_num(f->reset), now, window);
  if (reset < 0 && f->combined) {
    reset = reset_delta(param(f->combined, "reset"), now, window);
    if (reset < 0) reset = reset_delta(param(f->combined, "t"), now, window);
  }
  return reset;
}

/* See ratelimit.h. */
/* Keeps the quota's policy text (cut to fit). */
static void copy_policy(hyp_rate *r, const char *v) {
  size_t n = strlen(v);
  if (n >= sizeof r->policy) n = sizeof r->policy - 1;
  memcpy(r->policy, v, n);
  r->policy[n] = '\0';
}

void hyp_rate_update(hyp_rate *r, const hyp_buf *h, double now, hyp_rate_obs *obs) {
  double limit = -1, remaining = -1, reset = -1, window = -1;
  rl_fields f;
  find_fields(h, &f);
  const char *v;

  window = window_of(&f);
  if ((v = f.xlimit)) {
    limit = parse_num(v);
    copy_policy(r, v);
  }
  if ((v = f.xremaining)) remaining = parse_num(v);

  /* IETF drafts, used only where the x- fields are absent */
  if (limit < 0 && (v = f.limit)) limit = parse_num(v);
  if (remaining < 0 && (v = f.remaining)) remaining = parse_num(v);
  if ((v = f.combined)) {
    if (limit < 0) limit = param(v, "limit");
    if (remaining < 0) remaining = param(v, "remaining");
    if (remaining < 0) remaining = param(v, "r");
  }
  if ((v = f.policy)) {
    if (limit < 0) limit = parse_num(v);
    if (limit < 0) limit = param(v, "q");
    if (!f.xlimit) copy_policy(r, v);
  }
  reset = reset_of(&f, now, window > 0 ? window : r->window);
  limit = sane_count(limit);
  remaining = sane_count(remaining);
  if (obs) {
    obs->limit = limit;
    obs->window = window;
    obs->remaining = remaining;
    obs->reset = reset;
  }

  if (limit >= 0) r->limit = (long)limit;
  if (window > 0) r->window = window;
  if (remaining >= 0 && reset >= 0) {
    double upper = now + reset;
    /* same window: the old reset is still ahead and the count did not go up by
     * more than the answers still to come (they may arrive out of order) */
    int same = r->reset_at > now && r->remaining >= 0 && (long)remaining <= r->remaining + r->inflight;
    r->reset_at = same && r->reset_at < upper ? r->reset_at : upper;
    r->remaining = same && r->remaining < (long)remaining ? r->remaining : (long)remaining;
  } else if (remaining >= 0) {
    r->remaining = (long)remaining;
  }
  if (limit >= 0 || remaining >= 0 || reset >= 0) r->known = 1;
  r->answered = 1;
}

/* Seconds to wait before the next request may go out (0 = now); see the
 * top of this file. */
double hyp_rate_delay(hyp_rate *r, double now) {
  if (!r->answered) { /* the quota is unknown: no burst before the first answer */
    if (r->inflight <= 0 || now - r->first_send >= HYP_RATE_FIRST_WAIT) return 0;
    double left = r->first_send + HYP_RATE_FIRST_WAIT - now;
    return left < 0.05 ? left : 0.05; /* look again soon: the answer may be back */
  }
  if (!r->known || r->remaining < 0) return 0;
  if (r->reset_at > 0 && now >= r->reset_at) { /* the window is over */
    if (r->limit <= 0) return 0;
    r->remaining = r->limit;
    r->reset_at = r->window > 0 ? now + r->window : 0;
  }
  /* this client's share: the quota split between the clients that pace alone */
  long share = r->share > 1 ? r->share : 1;
  long limit = r->limit > 0 ? (r->limit + share - 1) / share : r->limit;
  long left_n = r->remaining / share - r->inflight;
  if (left_n <= 0) {
    if (r->reset_at > now) return r->reset_at - now + 0.005; /* wait for the reset */
    return r->inflight > 0 ? 0.05 : 0; /* no reset known: wait for an answer */
  }
  if (limit > 0 && (double)left_n * 2 >= (double)limit) return 0;
  if (r->reset_at <= 0) return 0;
  double left = r->reset_at - now;
  double next = r->last_send + left / (double)(left_n + 1);
  return next > now ? next - now : 0;
}

/* See ratelimit.h. */
void hyp_rate_sent(hyp_rate *r, double now) {
  if (!r->first_send) r->first_send = now;
  r->last_send = now;
  r->inflight++;
}

/* See ratelimit.h. */
void hyp_rate_answered(hyp_rate *r) {
  if (r->inflight > 0) r->inflight--;
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
  return s > MAX_BELIEVED ? MAX_BELIEVED : s;
}

/* Seconds until the quota window resets, from x-ratelimit-reset or the IETF
 * fields, clamped like the pacing state's (window: the last one known, 0 =
 * none), or -1. Decides a wait only for a 429 (see engine.c). */
double hyp_rate_reset(const hyp_buf *h, double now, double window) {
  rl_fields f;
  find_fields(h, &f);
  double w = window_of(&f);
  return reset_of(&f, now, w > 0 ? w : window);
}
