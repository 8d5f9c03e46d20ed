/*
 * engine/ratelimit.h — the server's quota as its headers tell it, and the
 * waits that follow: pacing before the server has to say 429, the wait a 429
 * or Retry-After asks for. Pure C99 + libc (see ratelimit.c for the rules).
 */
#ifndef HYP_ENGINE_RATELIMIT_H
#define HYP_ENGINE_RATELIMIT_H

#include "util.h"

#define HYP_RATE_FIRST_WAIT 2.0 /* longest wait for the first answer before sending more */

typedef struct hyp_rate {
  int known;               /* any rate-limit header seen */
  long limit;              /* -1 unknown */
  long remaining;          /* -1 unknown */
  double window;           /* policy window in seconds, 0 unknown */
  double reset_at;         /* wall clock; 0 unknown */
  char policy[64];
  double last_send;        /* when the last request was released */
  int answered;            /* an HTTP answer has come back (headers or not) */
  double first_send;       /* when the first request went out (0: none yet) */
  long inflight;           /* requests sent and not answered yet: each will use one of
                              `remaining`, so pacing counts them as used */
  long share;              /* this client's share of the quota: 1, or the number of clients
                              sharing it when they pace alone (the shared store is down) */
} hyp_rate;

/* What one answer said of the quota (for the shared store): -1 when absent.
 * reset is in seconds from the answer (clamped like the state's). */
typedef struct hyp_rate_obs {
  double limit, window, remaining, reset;
} hyp_rate_obs;

void hyp_rate_init(hyp_rate *r);
/* Updates r from the headers of an answer received at now; fills *obs (may be
 * NULL) with what this answer said. */
void hyp_rate_update(hyp_rate *r, const hyp_buf *headers, double now, hyp_rate_obs *obs);
/* Seconds to wait before the next request may go out (0 = now). When the
 * window is over with no answer from the next one, r starts a fresh window
 * (the whole limit, the last window's length). Until the first answer has
 * come back the quota is unknown: one request goes, the others wait for its
 * answer (for HYP_RATE_FIRST_WAIT s at most, in case it is a long transfer). */
double hyp_rate_delay(hyp_rate *r, double now);
/* A request goes out at now (counted in flight until hyp_rate_answered). */
void hyp_rate_sent(hyp_rate *r, double now);
/* A request sent earlier was answered (or failed): after hyp_rate_update. */
void hyp_rate_answered(hyp_rate *r);
/* Seconds a Retry-After header asks for (seconds or an HTTP date, capped at a
 * day), or < 0 when there is none. */
double hyp_retry_after(const hyp_buf *headers, double now);
/* Seconds until the quota window resets, clamped to the window (window: the
 * last one known, 0 = none), or < 0 when absent or not believable. */
double hyp_rate_reset(const hyp_buf *headers, double now, double window);

#endif
