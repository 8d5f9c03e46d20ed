/*
 * engine.c — the per-call state machine. It does no I/O: a driver asks it
 * "what next?" and gets SEND (this request), SLEEP (this long), DONE (value,
 * meta pushed) or FAIL (error pushed), then feeds back what the request got.
 * The same engine runs under the libcurl driver (client.c) and under drivers
 * written in Lua (call.c), e.g. tests with a fake clock or nginx cosockets.
 *
 * Policy (design.md §3):
 * - a usable token is found (current, cache) or fetched, one fetch at a time;
 * - 401 on an API call: drop that token (if still current), fetch, replay once
 *   (up to 3 times while the refused token came from a cache, not a fetch);
 * - 429, 500, 502, 503, 504 and transport failures are retried with
 *   exponential backoff and full jitter (base·2^n capped, times U[0,1));
 *   a 429 waits what Retry-After / x-ratelimit-reset say, a 5xx what
 *   Retry-After says (else the backoff), plus up to 10% jitter;
 * - a request that is not idempotent is retried only when nothing of it was
 *   sent or the server answered 429;
 * - a wait above max_wait fails at once (rate_limited, with retry_after);
 * - an optional deadline bounds the whole call, waits included;
 * - the token request has its own timeout and retries.
 */
#include "hypatos.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { P_START = 0, P_TOKEN, P_SENT, P_WAIT, P_DONE };

#define TOKEN_POLL 0.05 /* how often a call waits for another call's token fetch */

/* Sets up the engine state of a new client (options parsed separately). */
void hyp_engine_init(hyp_engine *E) {
  hyp_rate_init(&E->rate);
  E->rng = hyp_seed();
}

/* Releases the engine state, wiping secrets. */
void hyp_engine_free(hyp_engine *E) {
  hyp_token_free(&E->token);
  hyp_options_free(&E->opt);
  free(E->cache_key);
  E->cache_key = NULL;
}

void hyp_call_init(hyp_call *c) { memset(c, 0, sizeof *c); }

/* Releases a call; gives up the token fetch if this call had it. */
void hyp_call_free(hyp_engine *E, hyp_call *c) {
  if (c->owns_fetch && E) E->fetching = 0;
  c->owns_fetch = 0;
  hyp_request_free(&c->req);
  hyp_buf_wipe(&c->lines); /* held the access token or the Basic credentials */
  hyp_buf_free(&c->tokbody);
  c->phase = P_DONE;
}

/* A number in [0, 1): the client's random function if given, else splitmix64. */
static double rnd(lua_State *L, int client_idx, hyp_engine *E) {
  if (E->opt.has_random) {
    hyp_client_getuv(L, client_idx, ".random");
    lua_call(L, 0, 1);
    double v = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(v >= 0 && v < 1)) luaL_error(L, "hypatos: option \"random\" must return a number in [0, 1)");
    return v;
  }
  return hyp_random(&E->rng);
}

/* Full-jitter backoff for retry number n (0-based). */
static double backoff(lua_State *L, int client_idx, hyp_engine *E, int n) {
  double cap = E->opt.backoff_base * pow(2.0, n);
  if (cap > E->opt.backoff_cap) cap = E->opt.backoff_cap;
  return cap * rnd(L, client_idx, E);
}

/* Is the transport failure worth a retry at all? */
static int transient(int code) {
  switch (code) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_PARTIAL_FILE:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SEND_FAIL_REWIND:
    return 1;
  case CURLE_FILESIZE_EXCEEDED: /* the answer is over max_body_size: it would be again */
  default:
    return 0;
  }
}

/* Failures that happen before any request byte can reach the server. */
static int before_sending(int code) {
  return code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_COULDNT_CONNECT || code == CURLE_SSL_CONNECT_ERROR;
}

/* Seconds left until the call's deadline (at least 1 ms), or 0 without one. */
static double left_of(const hyp_call *c, double now) {
  if (c->deadline_at <= 0) return 0;
  double left = c->deadline_at - now;
  return left < 0.001 ? 0.001 : left;
}

static double per_attempt(const hyp_call *c, double t, double now) {
  if (c->deadline_at > 0) {
    double left = c->deadline_at - now;
    if (left < 0.001) left = 0.001;
    if (t <= 0 || left < t) t = left;
  }
  return t;
}

/* Pushes the common error fields for this call and the failure text. */
static void fail(lua_State *L, hyp_call *c, hyp_errinfo *e, hyp_action *act) {
  e->attempts = c->attempts;
  e->method = c->token_failed ? "POST" : c->req.method;
  e->url = c->token_failed ? c->out.url : c->req.url.data;
  hyp_push_error(L, e);
  act->type = HYP_ACT_FAIL;
  c->phase = P_DONE;
}

/* Remembers the last failure, for a later deadline error. */
static void note(hyp_call *c, int code, long status, const char *msg) {
  c->last_code = code;
  c->last_status = status;
  snprintf(c->last_msg, sizeof c->last_msg, "%.250s", msg ? msg : "");
}

/* Schedules a wait before the next attempt, unless it would break max_wait
 * (then fail as rate_limited) or the deadline (then fail as timeout). */
static void wait_then_retry(lua_State *L, hyp_engine *E, hyp_call *c, double wait, double now,
                            hyp_action *act) {
  if (c->deadline_at > 0 && now + wait >= c->deadline_at) {
    char msg[400];
    snprintf(msg, sizeof msg, "deadline reached after %d attempt%s; last failure: %s",
             c->attempts, c->attempts == 1 ? "" : "s", c->last_msg);
    hyp_errinfo e;
    hyp_errinfo_init(&e, "timeout", msg);
    e.status = c->last_status;
    e.code = c->last_code ? c->last_code : -1;
    e.retryable = 1;
    fail(L, c, &e, act);
    return;
  }
  (void)E;
  c->phase = P_WAIT;
  act->type = HYP_ACT_SLEEP;
  act->seconds = wait;
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
  hyp_buf_add(b, E->opt.user_agent, strlen(E->opt.user_agent) + 1);
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
  c->out.timeout = per_attempt(c, r->timeout >= 0 ? r->timeout : E->opt.timeout, now);
  c->out.deadline = left_of(c, now);
  c->out.max_body = E->opt.max_body_size;
  c->out.connect_timeout = E->opt.connect_timeout;
  c->out.fresh = !r->idempotent;
}

/* Decides the next action when nothing is pending (start, after a wait). */
static void next(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c, double now,
                 int token_only, hyp_action *act) {
  if (c->deadline_at > 0 && now >= c->deadline_at) {
    wait_then_retry(L, E, c, 0, now, act);
    return;
  }
  if (!hyp_token_usable(E, now) && !hyp_token_from_cache(L, client_idx, E, now)) {
    if (E->fetching && now - E->fetch_started < E->opt.token_timeout + 1) {
      wait_then_retry(L, E, c, TOKEN_POLL, now, act); /* another call is fetching */
      return;
    }
    E->fetching = 1;
    E->fetch_started = now;
    c->owns_fetch = 1;
    c->token_attempts++;
    E->token_requests++;
    hyp_token_request(E, c);
    c->out.timeout = per_attempt(c, E->opt.token_timeout, now);
    c->out.deadline = left_of(c, now);
    c->out.max_body = E->opt.max_body_size;
    c->phase = P_TOKEN;
    act->type = HYP_ACT_SEND;
    act->out = &c->out;
    E->rate.last_send = now;
    hyp_hook_request(L, client_idx, E, c);
    return;
  }
  if (token_only) {
    hyp_token_push(L, E, now);
    act->type = HYP_ACT_DONE;
    c->phase = P_DONE;
    return;
  }
  if (E->opt.throttle) {
    double d = hyp_rate_delay(&E->rate, now);
    if (d > 0.0005) {
      if (d > E->opt.max_wait) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the rate-limit quota is used up for %.1f s more (longer than max_wait)", d);
        hyp_errinfo e;
        hyp_errinfo_init(&e, "rate_limited", msg);
        e.retryable = 1;
        e.retry_after = d;
        fail(L, c, &e, act);
        return;
      }
      snprintf(c->last_msg, sizeof c->last_msg, "waiting for the rate-limit quota");
      wait_then_retry(L, E, c, d, now, act);
      return;
    }
  }
  build_attempt(E, c, now);
  c->sent_gen = E->token.gen;
  c->attempts++;
  E->requests++;
  E->rate.last_send = now;
  c->phase = P_SENT;
  act->type = HYP_ACT_SEND;
  act->out = &c->out;
  hyp_hook_request(L, client_idx, E, c);
}

/* Fails the call with the error of an HTTP answer (see answer.c). */
static void fail_http(lua_State *L, hyp_call *c, const hyp_result *in, const char *kind,
                      int retryable, double retry_after, const char *prefix, int keep_body,
                      hyp_action *act) {
  hyp_answer_error(L, c, in, kind, retryable, retry_after, prefix, keep_body);
  act->type = HYP_ACT_FAIL;
  c->phase = P_DONE;
}

/* Handles a transport failure of an API or token attempt. */
static void transport_failed(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c,
                             const hyp_result *in, double now, int is_token, hyp_action *act) {
  int code = in->code;
  const char *kind = in->io                              ? "io"
                     : code == CURLE_OPERATION_TIMEDOUT  ? "timeout"
                     : code == CURLE_FILESIZE_EXCEEDED   ? "decode" /* over max_body_size */
                                                         : "network";
  int safe = is_token || c->req.idempotent || !in->sent || before_sending(code);
  int retryable = !in->io && transient(code) && safe;
  char msg[400];
  snprintf(msg, sizeof msg, "%s%s", is_token ? "token request failed: " : "",
           in->message ? in->message : curl_easy_strerror((CURLcode)code));
  note(c, code, 0, msg);
  int used = is_token ? c->token_attempts - 1 : c->retries;
  if (retryable && used < c->max_retries) {
    if (!is_token) c->retries++;
    wait_then_retry(L, E, c, backoff(L, client_idx, E, used), now, act);
    return;
  }
  if (!in->io && transient(code) && !safe)
    snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
             " (not retried: the request may have reached the server)");
  hyp_errinfo e;
  hyp_errinfo_init(&e, kind, msg);
  e.code = code;
  e.retryable = retryable;
  fail(L, c, &e, act);
}

/* Handles 429 and retryable 5xx: wait and retry, or fail. */
static void retry_status(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c,
                         const hyp_result *in, double now, int is_token, hyp_action *act) {
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
    double wait = backoff(L, client_idx, E, used);
    if (server >= 0) {
      if (server > E->opt.max_wait) {
        char p[120];
        snprintf(p, sizeof p, "%snot retried: the server asks to wait %.0f s (more than max_wait); ",
                 prefix, server);
        fail_http(L, c, in, kind, 1, server, p, 1, act);
        return;
      }
      double jitter = server * 0.1 < 1 ? server * 0.1 : 1;
      wait = server + jitter * rnd(L, client_idx, E);
    }
    if (!is_token) c->retries++;
    wait_then_retry(L, E, c, wait, now, act);
    return;
  }
  const char *why = safe ? prefix
                         : (is_token ? prefix : "not retried, the request may have reached the server: ");
  fail_http(L, c, in, kind, safe, server, why, !is_token || in->status >= 400, act);
}

/* Feeds the answer to the token request. */
static int token_result(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c,
                        const hyp_result *in, double now, hyp_action *act) {
  c->owns_fetch = 0;
  E->fetching = 0;
  c->token_failed = 1; /* errors name the token URL, not the API call's */
  if (in->failed) {
    transport_failed(L, client_idx, E, c, in, now, 1, act);
    return 1;
  }
  hyp_rate_update(&E->rate, &in->headers, now);
  long s = in->status;
  if (s >= 200 && s < 300) {
    char msg[200];
    int rc = hyp_token_accept(L, client_idx, E, in, now, msg, sizeof msg);
    hyp_wipe(in->body.data, in->body.len); /* it held the access token */
    if (rc == 0) {
      c->token_failed = 0;
      c->fetched_gen = E->token.gen;
      return 0;
    }
    hyp_errinfo e;
    hyp_errinfo_init(&e, "auth", msg);
    e.status = s; /* no body: it may hold a token */
    fail(L, c, &e, act);
    return 1;
  }
  if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) {
    retry_status(L, client_idx, E, c, in, now, 1, act);
    return 1;
  }
  /* 404/405 at the token URL: almost always a base_url without /v2 (the
   * token URL is derived from it) or a wrong token_url. */
  const char *why = (s == 404 || s == 405)
                        ? "token request refused (check base_url: it must be the API root ending "
                          "in /v2, e.g. https://api.cloud.hypatos.ai/v2; or set token_url): "
                        : "token request refused: ";
  fail_http(L, c, in, "auth", 0, -1, why, 1, act);
  return 1;
}

/* Feeds the answer to an API attempt. Returns 0 when next() should run. */
static int api_result(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c,
                      const hyp_result *in, double now, hyp_action *act) {
  if (in->failed) {
    transport_failed(L, client_idx, E, c, in, now, 0, act);
    return 1;
  }
  hyp_rate_update(&E->rate, &in->headers, now);
  long s = in->status;
  if (s >= 200 && s < 300) {
    act->type = hyp_answer_value(L, E, c, in, now) == 2 ? HYP_ACT_DONE : HYP_ACT_FAIL;
    c->phase = P_DONE;
    return 1;
  }
  if (s == 401) {
    /* replay once; again (at most 3 times in all) while the refused token
     * was not fresh from this call's own token request: a shared cache may
     * hand over a token that was revoked together with ours */
    int fresh = c->fetched_gen && c->sent_gen == c->fetched_gen;
    if (!c->replayed || (!fresh && c->replayed < 3)) {
      c->replayed++;
      hyp_token_refused(E, c->sent_gen);
      return 0;
    }
    fail_http(L, c, in, "auth", 0, -1, "access token refused: ", 1, act);
    return 1;
  }
  if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) {
    retry_status(L, client_idx, E, c, in, now, 0, act);
    return 1;
  }
  fail_http(L, c, in, "http", 0, -1, "", 1, act);
  return 1;
}

/* One step (see hyp_call_step). */
static void step(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c, double now,
                 const hyp_result *in, hyp_action *act) {
  int token_only = c->token_only;
  switch (c->phase) {
  case P_START: {
    c->started = now;
    double d = c->req.deadline >= 0 ? c->req.deadline : E->opt.deadline;
    c->deadline_at = d > 0 ? now + d : 0;
    c->max_retries = c->req.max_retries >= 0 ? c->req.max_retries : E->opt.max_retries;
    break;
  }
  case P_TOKEN:
  case P_SENT: {
    if (!in) luaL_error(L, "hypatos: the call is waiting for the result of its request");
    int was_token = c->phase == P_TOKEN;
    c->phase = P_WAIT;
    hyp_hook_response(L, client_idx, E, c, in);
    if ((was_token ? token_result : api_result)(L, client_idx, E, c, in, now, act)) return;
    break;
  }
  case P_WAIT:
    break;
  default:
    luaL_error(L, "hypatos: the call is finished");
  }
  next(L, client_idx, E, c, now, token_only, act);
}

/* See hypatos.h. Every error leaves with its secrets scrubbed, whatever put
 * them there (an echoing server, a driver's failure text). */
void hyp_call_step(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c, double now,
                   const hyp_result *in, hyp_action *act) {
  memset(act, 0, sizeof *act);
  step(L, client_idx, E, c, now, in, act);
  if (act->type == HYP_ACT_FAIL) hyp_scrub(L, -1, E);
}
