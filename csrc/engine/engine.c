/*
 * engine/engine.c — the per-call state machine (see engine.h for the actions
 * and the policy). Every decision is a function of the state, the step's
 * input and the time it brings.
 */
#include "engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  P_START = 0,
  P_CACHE,          /* CACHE_GET out: the cache's answer comes next */
  P_CACHE_SET,      /* CACHE_SET out */
  P_RELEASE,        /* CACHE_RELEASE out: then the failure in c->err, or next() */
  P_ACQUIRE,        /* ACQUIRE out: the shared store's grant comes next */
  P_PRE_TOKEN,      /* ON_REQUEST out for the token request: SEND follows */
  P_PRE_API,        /* ON_REQUEST out for an API attempt: SEND follows */
  P_TOKEN,          /* the token request is out */
  P_SENT,           /* an API attempt is out */
  P_POST_TOKEN,     /* ON_RESPONSE out for the token answer */
  P_POST_API,       /* ON_RESPONSE out for an API answer */
  P_WAIT,           /* SLEEP out */
  P_DONE
};

#define TOKEN_POLL 0.05 /* how often a call looks again while another call fetches the token */
#define CACHE_WAIT_MAX 1.0 /* longest wait a token cache may ask for before it is asked again */
#define GRANT_LATE 0.25    /* a slot of the shared store not used this long after its time is
                              stale (the call waited for a token meanwhile): ask again */
#define MAX_REPLAYS 3   /* 401 replays while the refused token came from a cache */

/* ------------------------------------------------------------ lifecycle */

/* See engine.h. */
void hyp_engine_init(hyp_engine *E) {
  memset(E, 0, sizeof *E);
  hyp_rate_init(&E->rate);
}

/* See engine.h. */
void hyp_engine_free(hyp_engine *E) {
  hyp_token_free(&E->token);
  hyp_result_free(&E->fetch_answer);
  hyp_config_free(&E->cfg);
  free(E->cache_key);
  E->cache_key = NULL;
}

/* See engine.h. */
void hyp_request_free(hyp_request *r) {
  hyp_buf_free(&r->url);
  hyp_buf_free(&r->headers);
  hyp_buf_free(&r->json);
  free(r->body_path);
  r->body_path = NULL;
  free(r->output_path);
  r->output_path = NULL;
}

/* See engine.h. */
void hyp_result_reset(hyp_result *res) {
  hyp_buf_reset(&res->headers);
  hyp_buf_reset(&res->body);
  res->failure = res->sent = res->body_in_file = 0;
  res->code = -1;
  res->status = 0;
  res->elapsed = 0;
  res->message = NULL;
}

/* See engine.h. */
void hyp_result_free(hyp_result *res) {
  hyp_buf_free(&res->headers);
  hyp_buf_free(&res->body);
}

/* See engine.h. */
void hyp_call_init(hyp_call *c, int token_only) {
  memset(c, 0, sizeof *c);
  c->token_only = token_only;
  c->req.max_retries = -1;
  c->req.timeout = c->req.deadline = -1;
}

/* This call stops fetching the token: the others may fetch (or use the token
 * it got). */
static void release_fetch(hyp_engine *E, hyp_call *c) {
  if (c->owns_fetch) E->fetching = 0;
  c->owns_fetch = 0;
}

/* What a call holds in E (a token fetch, an attempt counted in flight) goes
 * back, when the call ends or is reset; E may be NULL (the client is gone). */
static void let_go(hyp_engine *E, hyp_call *c) {
  if (E) {
    release_fetch(E, c);
    if (c->in_flight) hyp_rate_answered(&E->rate);
  }
  c->owns_fetch = 0;
  c->in_flight = 0;
}

/* See engine.h. */
void hyp_call_free(hyp_engine *E, hyp_call *c) {
  let_go(E, c);
  hyp_request_free(&c->req);
  hyp_buf_wipe(&c->lines); /* held the access token or the Basic credentials */
  hyp_buf_free(&c->tokbody);
  c->phase = P_DONE;
}

/* See engine.h. */
void hyp_call_reset(hyp_engine *E, hyp_call *c, int token_only) {
  hyp_request *r = &c->req;
  let_go(E, c);
  free(r->body_path);
  free(r->output_path);
  hyp_buf url = r->url, headers = r->headers, json = r->json;
  hyp_buf lines = c->lines, tokbody = c->tokbody;
  if (lines.data) hyp_wipe(lines.data, lines.cap); /* held the access token */
  hyp_call_init(c, token_only);
  hyp_buf *keep[] = {&url, &headers, &json, &lines, &tokbody};
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
    if (keep[i]->cap > 65536) hyp_buf_free(keep[i]); /* do not hold big bodies */
    hyp_buf_reset(keep[i]);
  }
  r->url = url;
  r->headers = headers;
  r->json = json;
  c->lines = lines;
  c->tokbody = tokbody;
}

/* ---------------------------------------------------------- helpers */

/* Is the transport failure worth a retry at all? */
static int transient(int f) {
  switch (f) {
  case HYP_F_RESOLVE:
  case HYP_F_CONNECT:
  case HYP_F_TLS:
  case HYP_F_TIMEOUT:
  case HYP_F_SEND:
  case HYP_F_RECV:
  case HYP_F_CLOSED:
  case HYP_F_PARTIAL:
    return 1;
  default: /* TLS_VERIFY, TOO_LARGE (it would be again), IO, OTHER */
    return 0;
  }
}

/* Failures that happen before any request byte can reach the server. */
static int before_sending(int f) {
  return f == HYP_F_RESOLVE || f == HYP_F_CONNECT || f == HYP_F_TLS;
}

/* The error kind of a transport failure. */
static const char *failure_kind(int f) {
  return f == HYP_F_IO ? "io" : f == HYP_F_TIMEOUT ? "timeout" : f == HYP_F_TOO_LARGE ? "decode" : "network";
}

/* Seconds left until the call's deadline (at least 1 ms), or 0 without one. */
static double left_of(const hyp_call *c, double now) {
  if (c->deadline_at <= 0) return 0;
  double left = c->deadline_at - now;
  return left < 0.001 ? 0.001 : left;
}

/* An attempt's timeout t, cut to the time left of the deadline. */
static double per_attempt(const hyp_call *c, double t, double now) {
  if (c->deadline_at > 0) {
    double left = c->deadline_at - now;
    if (left < 0.001) left = 0.001;
    if (t <= 0 || left < t) t = left;
  }
  return t;
}

/* The full-jitter ceiling for retry number n (0-based): base·2^n, capped. */
static double backoff_cap(const hyp_engine *E, int n) {
  double cap = E->cfg.backoff_base * pow(2.0, n);
  return cap > E->cfg.backoff_cap ? E->cfg.backoff_cap : cap;
}

static const char *const OUTCOMES[] = {"not_sent", "refused", "unknown", "done"};

/* The attempts an error reports: the token request's when it is about that
 * request (the API attempts are 0 when the token never came), else the API's. */
static int attempts_of(const hyp_call *c) { return c->token_failed ? c->token_attempts : c->attempts; }

/* Ends the call with the error in c->err (common fields set here). */
static void fail(hyp_call *c, hyp_action *act) {
  hyp_error *e = &c->err;
  e->outcome = OUTCOMES[c->outcome];
  e->attempts = attempts_of(c);
  e->elapsed = c->now > c->started ? c->now - c->started : 0;
  e->method = c->token_failed ? "POST" : c->req.method;
  e->url = c->token_failed ? c->out.url : c->req.url.data;
  act->type = HYP_ACT_FAIL;
  act->error = e;
  c->phase = P_DONE;
}

/* The call's token fetch failed for good with the error in c->err (not yet
 * handed out): the calls that waited for this fetch fail the same way
 * instead of fetching again. A copy of the error and its answer stays in E. */
static void share_fetch_failure(hyp_engine *E, hyp_call *c) {
  release_fetch(E, c);
  E->failed_gen = c->fetch_gen;
  E->fetch_err = c->err;
  E->fetch_err.answer = NULL;
  if (c->err.answer) {
    const hyp_result *in = c->err.answer;
    hyp_result *copy = &E->fetch_answer;
    hyp_result_reset(copy);
    copy->status = in->status;
    if (hyp_buf_add(&copy->headers, in->headers.data, in->headers.len) ||
        hyp_buf_add(&copy->body, in->body.data, in->body.len)) {
      hyp_result_reset(copy); /* ENOMEM: the waiters get the status alone */
      copy->status = in->status;
    }
    E->fetch_err.answer = copy;
  }
}

/* Starts c->err: kind, message (printf-style), nothing else. */
static hyp_error *error_start(hyp_call *c, const char *kind, const char *fmt, ...) HYP_PRINTF(3, 4);
static hyp_error *error_start(hyp_call *c, const char *kind, const char *fmt, ...) {
  hyp_error *e = &c->err;
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->retry_after = -1;
  e->code = -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return e;
}

/* Fails the call with an error about the HTTP answer in: the message is
 * prefix followed by the body's title/detail (the binding completes it). */
static void fail_answer(hyp_call *c, const hyp_result *in, const char *kind, int retryable,
                        double retry_after, const char *prefix, int keep_body, hyp_action *act) {
  hyp_error *e = error_start(c, kind, "%s", prefix);
  e->status = in->status;
  e->retryable = retryable;
  e->retry_after = retry_after;
  e->answer = in;
  e->keep_body = keep_body;
  fail(c, act);
}

/* Remembers the last failure, for a later deadline error. */
static void note(hyp_call *c, int code, long status, const char *msg) {
  c->last_code = code;
  c->last_status = status;
  snprintf(c->last_msg, sizeof c->last_msg, "%.250s", msg ? msg : "");
}

/* Fails the call as a timeout: its deadline is reached. */
static void fail_deadline(hyp_call *c, hyp_action *act) {
  int n = attempts_of(c);
  hyp_error *e = error_start(c, "timeout", "deadline reached after %d attempt%s; last failure: %s", n,
                             n == 1 ? "" : "s", c->last_msg);
  e->status = c->last_status;
  e->code = c->last_code ? c->last_code : -1;
  e->retryable = 1;
  c->deadline_hit = 1;
  fail(c, act);
}

/* Schedules a wait of seconds + jitter·U (seconds at least HYP_MIN_WAIT)
 * before the next attempt. A wait that must cross the deadline fails at
 * once (timeout), and so does one with less than half of its jitter left
 * before it; otherwise the jitter is cut so that the wait ends within the
 * deadline. */
static void wait_then_retry(hyp_call *c, double seconds, double jitter, double now, hyp_action *act) {
  if (seconds < HYP_MIN_WAIT) seconds = HYP_MIN_WAIT; /* see HYP_MIN_WAIT */
  if (c->deadline_at > 0) {
    if (now + seconds >= c->deadline_at) {
      fail_deadline(c, act);
      return;
    }
    /* the jitter is cut to the time left; when less than half of it is left
     * the retry would most likely come too late to help, and cutting it
     * again and again would retry faster and faster near the deadline */
    double room = c->deadline_at - now - seconds;
    if (jitter > room) {
      if (room < jitter / 2) {
        fail_deadline(c, act);
        return;
      }
      jitter = room;
    }
  }
  c->phase = P_WAIT;
  act->type = HYP_ACT_SLEEP;
  act->seconds = seconds;
  act->jitter = jitter > 0 ? jitter : 0;
}

/* ---------------------------------------------------------- decisions */

/* Builds the outgoing API request of the next attempt into c->out. */
static void build_attempt(hyp_engine *E, hyp_call *c, double now) {
  const hyp_request *r = &c->req;
  hyp_buf *b = &c->lines;
  hyp_buf_reset(b);
  c->token_failed = 0;
  int n = r->nheaders + 2;
  hyp_buf_add(b, r->headers.data, r->headers.len);
  hyp_buf_adds(b, "Authorization: Bearer ");
  hyp_buf_add(b, E->token.access_token, strlen(E->token.access_token) + 1);
  hyp_buf_adds(b, "User-Agent: ");
  hyp_buf_add(b, E->cfg.user_agent, strlen(E->cfg.user_agent) + 1);
  if (!r->has_accept) {
    const char *accept = (r->raw || r->output_path) ? "Accept: */*" : "Accept: application/json";
    hyp_buf_add(b, accept, strlen(accept) + 1);
    n++;
  }
  memset(&c->out, 0, sizeof c->out);
  c->out.method = r->method;
  c->out.url = r->url.data;
  c->out.headers = &c->lines;
  c->out.nheaders = n;
  c->out.body_kind = r->body_kind;
  c->out.body = r->body;
  c->out.body_len = r->body_len;
  c->out.body_path = r->body_path;
  c->out.body_size = r->body_size;
  c->out.output_path = r->output_path;
  c->out.stream = r->body_kind == HYP_BODY_FILE || r->output_path;
  c->out.timeout = per_attempt(c, r->timeout >= 0 ? r->timeout : E->cfg.timeout, now);
  c->out.deadline = left_of(c, now);
  c->out.max_body = E->cfg.max_body_size;
  c->out.connect_timeout = E->cfg.connect_timeout;
  c->out.fresh = !r->idempotent;
}

/* Hands c->out to the driver: through ON_REQUEST first when there is a hook. */
static void send_out(hyp_engine *E, hyp_call *c, int token, hyp_action *act) {
  act->out = &c->out;
  if (E->cfg.has_on_request) {
    act->type = HYP_ACT_ON_REQUEST;
    c->phase = token ? P_PRE_TOKEN : P_PRE_API;
  } else {
    act->type = HYP_ACT_SEND;
    c->phase = token ? P_TOKEN : P_SENT;
  }
}

/* Starts this call's token request. */
static void fetch_token(hyp_engine *E, hyp_call *c, double now, hyp_action *act) {
  if (!c->owns_fetch) { /* a new fetch (a retry of this call's own keeps its number) */
    c->fetch_gen = ++E->fetch_gen;
    if (!c->fetch_gen) c->fetch_gen = ++E->fetch_gen; /* 0 means none */
  }
  E->fetching = 1;
  E->fetch_started = now;
  c->owns_fetch = 1;
  c->cache_waiting = 0;
  c->token_attempts++;
  E->token_requests++;
  int n = hyp_token_request(&E->cfg, &c->lines, &c->tokbody);
  memset(&c->out, 0, sizeof c->out);
  c->out.method = "POST";
  c->out.url = E->cfg.token_url;
  c->out.headers = &c->lines;
  c->out.nheaders = n < 0 ? 0 : n; /* on ENOMEM the request goes out incomplete and is refused */
  c->out.body_kind = HYP_BODY_MEMORY;
  c->out.body = c->tokbody.data ? c->tokbody.data : "";
  c->out.body_len = c->tokbody.len;
  c->out.connect_timeout = E->cfg.connect_timeout;
  c->out.is_token = 1;
  c->out.timeout = per_attempt(c, E->cfg.token_timeout, now);
  c->out.deadline = left_of(c, now);
  c->out.max_body = E->cfg.max_body_size;
  hyp_rate_sent(&E->rate, now);
  c->in_flight = 1;
  send_out(E, c, 1, act);
}

/* True when the shared store is to be asked (there is one, its breaker is closed). */
static int store_active(const hyp_engine *E, double now) {
  return E->cfg.has_store && now >= E->store_down_until;
}

/* The longest wait this call accepts: max_wait, cut to its deadline. */
static double wait_allowed(const hyp_engine *E, const hyp_call *c, double now) {
  double w = E->cfg.max_wait;
  if (c->deadline_at > 0 && c->deadline_at - now < w) w = c->deadline_at - now;
  return w > 0 ? w : 0;
}

/* Asks the shared store for a slot (ACQUIRE), with what to tell it. */
static void acquire(hyp_engine *E, hyp_call *c, double now, hyp_action *act) {
  c->phase = P_ACQUIRE;
  act->type = HYP_ACT_ACQUIRE;
  act->seconds = wait_allowed(E, c, now);
  act->obs = E->obs.has ? &E->obs : NULL;
}

/* Takes the store's grant g (NULL: it failed). Returns 1 when act is set (a
 * wait, or a failure: the wait is longer than the call accepts), 0 when
 * next() goes on (granted, or the store is out of the way for a while). */
static int granted(hyp_engine *E, hyp_call *c, const hyp_grant *g, double now, hyp_action *act) {
  E->acquires++;
  if (!g || g->failed) { /* the breaker opens: local pacing with this client's share */
    E->store_failures++;
    E->store_down_until = now + HYP_STORE_BREAK;
    E->store_fallback = 1;
    E->obs.has = 0;
    return 0;
  }
  E->store_down_until = 0;
  E->store_fallback = 0;
  E->obs.has = 0; /* told */
  if (g->fleet > 0) E->fleet = g->fleet;
  if (!(g->wait > 0.0005)) {
    c->granted = 1;
    c->grant_until = now + GRANT_LATE;
    return 0;
  }
  E->store_waits++;
  E->store_wait_total += g->wait;
  if (g->wait > E->cfg.max_wait) { /* (a wait past the deadline fails in wait_then_retry) */
    hyp_error *e = error_start(c, "rate_limited",
                               "the shared rate-limit quota is used up for %.1f s more (longer than max_wait)",
                               g->wait);
    e->retryable = 1;
    e->retry_after = g->wait;
    fail(c, act);
    return 1;
  }
  c->granted = g->reserved; /* a reserved slot is this call's once the wait is over */
  c->grant_until = now + g->wait + GRANT_LATE;
  snprintf(c->last_msg, sizeof c->last_msg, "waiting for the shared rate-limit quota");
  wait_then_retry(c, g->wait, 0, now, act);
  return 1;
}

/* Notes what an answer said of the quota for the shared store (told with the
 * next ACQUIRE): the latest answer's figures, and the longest pause asked (a
 * 429's reset or Retry-After, a Retry-After on any status). */
static void observe(hyp_engine *E, const hyp_result *in, const hyp_rate_obs *o, double now) {
  hyp_store_obs *b = &E->obs;
  double pause_end = b->has && b->pause > 0 ? b->at + b->pause : 0;
  double ra = hyp_retry_after(&in->headers, now);
  if (ra < 0 && in->status == 429) ra = o->reset >= 0 ? o->reset : 1;
  if (ra > 0 && now + ra > pause_end) pause_end = now + ra;
  if (o->limit < 0 && o->window < 0 && o->remaining < 0 && o->reset < 0 && pause_end <= now) return;
  b->has = 1;
  b->at = now;
  b->limit = o->limit;
  b->window = o->window;
  b->remaining = o->remaining;
  b->reset = o->reset;
  b->pause = pause_end > now ? pause_end - now : 0;
}

/* Decides the next action when nothing is pending (start, after a wait, a
 * cache answer, a replay). */
static void next(hyp_engine *E, hyp_call *c, double now, hyp_action *act) {
  if (c->deadline_at > 0 && now >= c->deadline_at) {
    release_fetch(E, c);
    fail_deadline(c, act);
    return;
  }
  if (!hyp_token_usable(&E->token, now)) {
    /* a slot of the shared store this call holds goes stale while it waits for a token: the
     * calls that waited would spend theirs at once when it comes, into one server window */
    c->granted = 0;
    if (c->fetch_gen && !c->owns_fetch && E->failed_gen == c->fetch_gen) {
      c->err = E->fetch_err; /* the fetch this call waited for failed: so does it */
      c->token_failed = 1;
      c->out.url = E->cfg.token_url;
      fail(c, act);
      c->err.attempts = E->fetch_err.attempts; /* that fetch's attempts (this call made none) */
      return;
    }
    if (E->fetching && !c->owns_fetch && !c->has_ticket && now - E->fetch_started < E->cfg.token_timeout + 1) {
      c->fetch_gen = E->fetch_gen; /* another call of this client is fetching: wait for its outcome */
      wait_then_retry(c, TOKEN_POLL, 0, now, act);
      return;
    }
    if (E->cfg.has_cache && !c->cache_answered && !c->has_ticket &&
        !(E->cfg.has_store && now < E->store_down_until)) { /* a store that is down is not asked */
      c->phase = P_CACHE;
      act->type = HYP_ACT_CACHE_GET;
      return;
    }
    c->cache_answered = 0;
    if (!hyp_token_usable(&E->token, now)) {
      if (c->cache_wait > 0) { /* another fetch is out elsewhere (the cache says): ask again later */
        double w = c->cache_wait;
        c->cache_wait = 0;
        if (!c->cache_waiting) c->cache_waiting = now;
        if (now - c->cache_waiting < E->cfg.token_timeout + 1) {
          snprintf(c->last_msg, sizeof c->last_msg, "waiting for a token another client fetches");
          wait_then_retry(c, w, 0, now, act);
          return;
        } /* the cache kept this call waiting longer than a fetch may take: fetch */
      }
      /* the token request does not queue for a slot: it is one per fleet, and the calls
       * waiting for it hold slots they cannot use meanwhile (a 429 is retried as always) */
      fetch_token(E, c, now, act);
      return;
    }
  }
  release_fetch(E, c); /* a token is there (fetched, or from the cache during a backoff) */
  c->fetch_gen = 0;
  c->cache_answered = 0;
  c->cache_waiting = 0;
  if (c->has_ticket) { /* the token came from elsewhere: this call's ticket goes back unused */
    c->has_ticket = E->cfg.has_cache_release;
    if (c->has_ticket) {
      c->phase = P_RELEASE;
      act->type = HYP_ACT_CACHE_RELEASE;
      act->ticket = c->ticket;
      return;
    }
  }
  if (c->token_only) {
    act->type = HYP_ACT_DONE;
    c->phase = P_DONE;
    return;
  }
  if (store_active(E, now)) { /* the shared store paces: one slot per request */
    int slot = c->granted && now <= c->grant_until; /* a slot this call waited for, still on time */
    c->granted = 0;
    if (!slot) {
      acquire(E, c, now, act);
      return;
    }
  } else if (E->cfg.throttle) { /* alone, or the store is down: this client's share */
    E->rate.share = E->cfg.has_store && E->fleet > 1 ? E->fleet : 1;
    double d = hyp_rate_delay(&E->rate, now);
    if (d > E->cfg.max_wait && !E->rate.answered) d = 0; /* a cold start is no quota wait */
    if (d > 0.0005) {
      if (d > E->cfg.max_wait) {
        hyp_error *e = error_start(c, "rate_limited",
                                   "the rate-limit quota is used up for %.1f s more (longer than max_wait)", d);
        e->retryable = 1;
        e->retry_after = d;
        fail(c, act);
        return;
      }
      snprintf(c->last_msg, sizeof c->last_msg, "waiting for the rate-limit quota");
      wait_then_retry(c, d, 0, now, act);
      return;
    }
  }
  build_attempt(E, c, now);
  c->sent_gen = E->token.gen;
  c->attempts++;
  E->requests++;
  hyp_rate_sent(&E->rate, now);
  c->in_flight = 1;
  send_out(E, c, 0, act);
}

/* Handles a transport failure of an API or token attempt. */
static void transport_failed(hyp_engine *E, hyp_call *c, const hyp_result *in, double now, int is_token,
                             hyp_action *act) {
  int f = in->failure;
  int safe = is_token || c->req.idempotent || !in->sent || before_sending(f);
  int retryable = transient(f) && safe;
  char msg[400];
  snprintf(msg, sizeof msg, "%s%s", is_token ? "token request failed: " : "",
           in->message ? in->message : "transport failure");
  note(c, in->code > 0 ? in->code : 0, 0, msg);
  int used = is_token ? c->token_attempts - 1 : c->retries;
  if (retryable && used < c->max_retries) {
    if (!is_token) c->retries++;
    wait_then_retry(c, 0, backoff_cap(E, used), now, act);
    return;
  }
  int carried_out = !is_token && in->status >= 200 && in->status < 300;
  int lost = carried_out && transient(f); /* not a local limit (too large) or file (io) */
  hyp_error *e = error_start(c, failure_kind(f), "%s%s", msg,
                             lost ? " (after its 2xx status: the request was carried out, only the "
                                    "rest of the answer was lost)"
                             : transient(f) && !safe ? " (not retried: the request may have reached the server)"
                                                     : "");
  e->code = in->code;
  e->retryable = retryable;
  if (carried_out) { /* what is known: the status and the headers that arrived (a Location…) */
    e->status = in->status;
    e->answer = in;
  }
  fail(c, act);
}

/* Handles 429 and retryable 5xx: wait and retry, or fail. */
static void retry_status(hyp_engine *E, hyp_call *c, const hyp_result *in, double now, int is_token,
                         hyp_action *act) {
  int is429 = in->status == 429;
  int safe = is429 || is_token || c->req.idempotent;
  /* Retry-After decides for any status; the quota reset only for a 429: the
   * API sends x-ratelimit-reset on every answer, and a 5xx is not about the
   * quota (pacing still waits when the quota is at zero). */
  double server = hyp_retry_after(&in->headers, now);
  if (server < 0 && is429) server = hyp_rate_reset(&in->headers, now, E->rate.window);
  int used = is_token ? c->token_attempts - 1 : c->retries;
  char msg[200];
  snprintf(msg, sizeof msg, "HTTP %ld", in->status);
  note(c, 0, in->status, msg);
  const char *kind = is429 ? "rate_limited" : is_token ? "auth" : "http";
  const char *prefix = is_token ? "token request failed: " : "";
  if (safe && used < c->max_retries) {
    double seconds = 0, jitter = backoff_cap(E, used);
    if (server >= 0) {
      if (server > E->cfg.max_wait) {
        char p[120];
        snprintf(p, sizeof p, "%snot retried: the server asks to wait %.0f s (more than max_wait); ",
                 prefix, server);
        fail_answer(c, in, kind, 1, server, p, 1, act);
        return;
      }
      seconds = server;
      jitter = server * 0.1 < 1 ? server * 0.1 : 1;
    }
    if (!is_token) c->retries++;
    wait_then_retry(c, seconds, jitter, now, act);
    return;
  }
  const char *why = safe || is_token ? prefix : "not retried, the request may have reached the server: ";
  fail_answer(c, in, kind, safe, server, why, !is_token || in->status >= 400, act);
}

/* Feeds the answer to the token request. Returns 0 when a token was
 * installed (the caller goes on), 1 when act is set. */
static int token_outcome(hyp_engine *E, hyp_call *c, const hyp_result *in, double now, hyp_action *act) {
  c->token_failed = 1; /* errors name the token URL, not the API call's */
  if (in->failure) {
    transport_failed(E, c, in, now, 1, act);
    return 1;
  }
  long s = in->status;
  if (s >= 200 && s < 300) {
    char msg[200];
    int rc = hyp_token_accept(&E->token, &E->cfg, in->body.data, in->body.len, now, msg, sizeof msg);
    if (rc == 0) {
      c->token_failed = 0;
      c->fetched_gen = E->token.gen;
      if (E->cfg.has_cache) {
        c->phase = P_CACHE_SET;
        act->type = HYP_ACT_CACHE_SET;
        act->ticket = c->has_ticket ? c->ticket : NULL;
        return 1;
      }
      return 0;
    }
    hyp_error *e = error_start(c, "auth", "%s", msg);
    e->status = s; /* no body: it may hold a token */
    fail(c, act);
    return 1;
  }
  if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) {
    retry_status(E, c, in, now, 1, act);
    return 1;
  }
  /* 404/405 at the token URL: almost always a base_url without /v2 (the
   * token URL is derived from it) or a wrong token_url. */
  const char *why = (s == 404 || s == 405)
                        ? "token request refused (check base_url: it must be the API root ending "
                          "in /v2, e.g. https://api.cloud.hypatos.ai/v2; or set token_url): "
                        : "token request refused: ";
  fail_answer(c, in, "auth", 0, -1, why, 1, act);
  return 1;
}

/* token_outcome, and what it means for the calls waiting for this fetch:
 * success or a cache hand-off releases them; a backoff keeps them waiting
 * (the fetch is still this call's); a final failure is shared with them. */
static int token_result(hyp_engine *E, hyp_call *c, const hyp_result *in, double now, hyp_action *act) {
  int r = token_outcome(E, c, in, now, act);
  if (r == 0 || act->type == HYP_ACT_CACHE_SET) {
    release_fetch(E, c);
  } else if (act->type == HYP_ACT_SLEEP) {
    E->fetch_started = now + act->seconds + act->jitter;
  } else if (act->type == HYP_ACT_FAIL && c->owns_fetch) {
    if (c->deadline_hit)
      release_fetch(E, c); /* this call's own deadline: the others may fetch */
    else
      share_fetch_failure(E, c);
  }
  return r;
}

/* Feeds the answer to an API attempt. Returns 0 when next() should run. */
static int api_result(hyp_engine *E, hyp_call *c, const hyp_result *in, double now, hyp_action *act) {
  if (in->failure) {
    transport_failed(E, c, in, now, 0, act);
    return 1;
  }
  long s = in->status;
  if (s >= 200 && s < 300) {
    act->type = HYP_ACT_DONE;
    act->in = in;
    c->phase = P_DONE;
    return 1;
  }
  if (s == 401) {
    /* replay once; again (at most MAX_REPLAYS in all) while the refused token
     * was not fresh from this call's own token request: a shared cache may
     * hand over a token that was revoked together with ours */
    int fresh = c->fetched_gen && c->sent_gen == c->fetched_gen;
    if (!c->replayed || (!fresh && c->replayed < MAX_REPLAYS)) {
      c->replayed++;
      hyp_token_refused(&E->token, c->sent_gen);
      return 0;
    }
    fail_answer(c, in, "auth", 0, -1, "access token refused: ", 1, act);
    return 1;
  }
  if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) {
    retry_status(E, c, in, now, 0, act);
    return 1;
  }
  fail_answer(c, in, "http", 0, -1, "", 1, act);
  return 1;
}

/* Takes the token cache's answer k: a token is installed (when usable, sane
 * and not the refused one), a ticket or a wait is noted for next(); a
 * denial fails the call (returns 1, act set), as the refusal it remembers. */
static int cache_answer(hyp_engine *E, hyp_call *c, const hyp_cached *k, double now, hyp_action *act) {
  if (k->denied_status > 0) {
    hyp_error *e = error_start(c, "auth", "%.400s (remembered by the token cache)",
                               k->denied_message && *k->denied_message ? k->denied_message
                                                                       : "token request refused");
    e->status = k->denied_status;
    c->token_failed = 1;
    c->out.url = E->cfg.token_url;
    fail(c, act);
    return 1;
  }
  if (hyp_token_take_cached(&E->token, k, now)) return 0;
  if (k->ticket && k->ticket_len > 0 && k->ticket_len <= HYP_TICKET_MAX && strlen(k->ticket) == k->ticket_len) {
    memcpy(c->ticket, k->ticket, k->ticket_len + 1);
    c->has_ticket = 1;
  } else if (k->wait > 0) {
    double most = E->cfg.max_wait < CACHE_WAIT_MAX ? E->cfg.max_wait : CACHE_WAIT_MAX;
    if (most < TOKEN_POLL) most = TOKEN_POLL;
    c->cache_wait = k->wait < most ? k->wait : most;
  }
  return 0;
}

/* Processes an attempt's answer (after its ON_RESPONSE, if any). */
static void answered(hyp_engine *E, hyp_call *c, int token, const hyp_result *in, double now,
                     hyp_action *act) {
  c->pending = NULL;
  c->phase = P_WAIT;
  if (!token) { /* what this attempt may have done at the server: the call keeps the most telling */
    int o = !in->failure ? (in->status >= 200 && in->status < 300 ? HYP_OUT_DONE : HYP_OUT_REFUSED)
            : in->status >= 200 && in->status < 300    ? HYP_OUT_DONE
            : in->sent && !before_sending(in->failure) ? HYP_OUT_UNKNOWN
                                                       : HYP_OUT_NOT_SENT;
    if (o > c->outcome) c->outcome = o;
  }
  if (!in->failure) {
    hyp_rate_obs o;
    hyp_rate_update(&E->rate, &in->headers, now, &o);
    if (E->cfg.has_store) observe(E, in, &o, now);
  }
  if (c->in_flight) {
    c->in_flight = 0;
    hyp_rate_answered(&E->rate);
  }
  if ((token ? token_result : api_result)(E, c, in, now, act)) return;
  next(E, c, now, act);
}

/* One step (see engine.h); hyp_call_step adds the ticket's release. */
static const char *step(hyp_engine *E, hyp_call *c, const hyp_input *in, hyp_action *act) {
  double now = in->now;
  if (c->phase == P_DONE) return "the call is finished";
  c->now = now;
  if ((c->phase == P_TOKEN || c->phase == P_SENT) && !in->result)
    return "the call is waiting for the result of its request";
  memset(act, 0, sizeof *act);
  switch (c->phase) {
  case P_START: {
    c->started = now;
    double d = c->req.deadline >= 0 ? c->req.deadline : E->cfg.deadline;
    c->deadline_at = d > 0 ? now + d : 0;
    c->max_retries = c->req.max_retries >= 0 ? c->req.max_retries : E->cfg.max_retries;
    break;
  }
  case P_CACHE:
    c->cache_answered = 1;
    if (in->cached && in->cached->failed && E->cfg.has_store) { /* the store's token side is down */
      E->store_down_until = now + HYP_STORE_BREAK;
      E->store_fallback = 1;
    }
    if (in->cached && cache_answer(E, c, in->cached, now, act)) return NULL;
    break;
  case P_ACQUIRE:
    if (granted(E, c, in->grant, now, act)) return NULL;
    break;
  case P_RELEASE:
    c->has_ticket = 0;
    if (c->release_fails) { /* the failure the ticket was released for */
      c->release_fails = 0;
      act->type = HYP_ACT_FAIL;
      act->error = &c->err;
      c->phase = P_DONE;
      return NULL;
    }
    break;
  case P_PRE_TOKEN:
  case P_PRE_API:
    act->type = HYP_ACT_SEND;
    act->out = &c->out;
    c->phase = c->phase == P_PRE_TOKEN ? P_TOKEN : P_SENT;
    return NULL;
  case P_TOKEN:
  case P_SENT: {
    int token = c->phase == P_TOKEN;
    if (E->cfg.has_on_response) {
      c->pending = in->result;
      c->phase = token ? P_POST_TOKEN : P_POST_API;
      act->type = HYP_ACT_ON_RESPONSE;
      act->out = &c->out;
      act->in = in->result;
      return NULL;
    }
    answered(E, c, token, in->result, now, act);
    return NULL;
  }
  case P_POST_TOKEN:
  case P_POST_API:
    answered(E, c, c->phase == P_POST_TOKEN, c->pending, now, act);
    return NULL;
  case P_CACHE_SET:
    c->has_ticket = 0; /* the cache has the token and its ticket back */
    break;
  case P_WAIT:
  default:
    break;
  }
  next(E, c, now, act);
  return NULL;
}

/* See engine.h. A failure of a call that holds a ticket of the token cache
 * goes out as CACHE_RELEASE first (with the error), then as FAIL. */
const char *hyp_call_step(hyp_engine *E, hyp_call *c, const hyp_input *in, hyp_action *act) {
  const char *misuse = step(E, c, in, act);
  if (!misuse && act->type == HYP_ACT_FAIL && c->has_ticket) {
    c->has_ticket = E->cfg.has_cache_release;
    if (c->has_ticket) {
      c->release_fails = 1;
      c->phase = P_RELEASE;
      act->type = HYP_ACT_CACHE_RELEASE;
      act->ticket = c->ticket;
    }
  }
  return misuse;
}
