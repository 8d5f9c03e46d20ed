/*
 * test/engine_test.c — the engine's decisions, checked in C with no Lua, no
 * libcurl and no clock: it links csrc/engine/ alone (make engine-test, run by
 * make test). Every case drives calls with scripted results and a fake clock
 * and checks the actions: token fetch and sharing, the token cache and hooks
 * as actions, retries and their waits (seconds + jitter span), pacing, the
 * no-re-send rule, max_wait, the deadline, and the token answer's reader.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../csrc/engine/engine.h"
#include "../csrc/engine/tokjson.h"

static int failures, checks;

#define CHECK(cond, ...)                                                                        \
  do {                                                                                          \
    checks++;                                                                                   \
    if (!(cond)) {                                                                              \
      failures++;                                                                               \
      fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                               \
      fprintf(stderr, __VA_ARGS__);                                                             \
      fputc('\n', stderr);                                                                      \
    }                                                                                           \
  } while (0)

/* ------------------------------------------------------------- fixtures */

/* An engine with the library's defaults and test credentials. */
static void engine(hyp_engine *E) {
  hyp_engine_init(E);
  hyp_config *c = &E->cfg;
  c->client_id = hyp_strdup("id");
  c->client_secret = hyp_strdup("secret");
  c->base_url = hyp_strdup("https://api.example.test/v2");
  c->token_url = hyp_strdup("https://api.example.test/v2/auth/token");
  c->user_agent = hyp_strdup("hypatos-test");
  c->timeout = 60;
  c->connect_timeout = 10;
  c->token_timeout = 30;
  c->max_retries = 4;
  c->backoff_base = 0.5;
  c->backoff_cap = 30;
  c->max_wait = 60;
  c->throttle = 1;
  c->max_body_size = 1 << 20;
  E->cache_key = hyp_strdup("key");
}

/* A call of method path on E. */
static void call(hyp_call *c, const char *method, const char *path, int idempotent) {
  hyp_call_init(c, 0);
  snprintf(c->req.method, sizeof c->req.method, "%s", method);
  hyp_buf_adds(&c->req.url, "https://api.example.test/v2");
  hyp_buf_adds(&c->req.url, path);
  c->req.idempotent = idempotent;
}

/* A result: status with headers "name: value" pairs (NULL-terminated) and a body. */
static void answer(hyp_result *r, long status, const char *body, ...) {
  hyp_result_reset(r);
  r->status = status;
  va_list ap;
  va_start(ap, body);
  const char *n;
  while ((n = va_arg(ap, const char *))) {
    const char *v = va_arg(ap, const char *);
    hyp_header_add(&r->headers, n, strlen(n), v, strlen(v));
  }
  va_end(ap);
  if (body) hyp_buf_adds(&r->body, body);
}

/* A transport failure of class f; sent says whether request bytes left. */
static void broken(hyp_result *r, int f, int sent) {
  hyp_result_reset(r);
  r->failure = f;
  r->sent = sent;
  r->message = "scripted failure";
}

#define TOKEN_OK "{\"access_token\":\"tok-1\",\"token_type\":\"Bearer\",\"expires_in\":3600}"

/* One step with a result (or none). */
static const hyp_action *step(hyp_engine *E, hyp_call *c, double now, const hyp_result *res) {
  static hyp_action act;
  hyp_input in = {now, res, NULL, NULL};
  const char *misuse = hyp_call_step(E, c, &in, &act);
  CHECK(misuse == NULL, "misuse: %s", misuse ? misuse : "");
  return &act;
}

/* Header line value in an outgoing request, or NULL. */
static const char *line(const hyp_outgoing *o, const char *name) {
  const char *p = o->headers->data;
  size_t n = strlen(name);
  for (int i = 0; p && i < o->nheaders; i++, p += strlen(p) + 1)
    if (strncmp(p, name, n) == 0 && p[n] == ':') return p + n + 2;
  return NULL;
}

/* ---------------------------------------------------------------- cases */

static void token_then_call(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  call(&c, "GET", "/users", 1);
  const hyp_action *a = step(&E, &c, 1000, NULL);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "first the token request, got %d", a->type);
  CHECK(strcmp(a->out->url, "https://api.example.test/v2/auth/token") == 0, "token URL %s", a->out->url);
  CHECK(strcmp(line(a->out, "Authorization"), "Basic aWQ6c2VjcmV0") == 0, "Basic credentials");
  CHECK(strcmp(a->out->body, "grant_type=client_credentials") == 0, "form body %s", a->out->body);
  answer(&r, 200, TOKEN_OK, NULL);
  a = step(&E, &c, 1000.1, &r);
  CHECK(a->type == HYP_ACT_SEND && !a->out->is_token, "then the call");
  CHECK(strcmp(line(a->out, "Authorization"), "Bearer tok-1") == 0, "bearer token");
  CHECK(strcmp(line(a->out, "Accept"), "application/json") == 0, "accept");
  answer(&r, 200, "{}", "content-type", "application/json", NULL);
  a = step(&E, &c, 1000.2, &r);
  CHECK(a->type == HYP_ACT_DONE && a->in == &r, "done with the answer");
  CHECK(E.requests == 1 && E.token_requests == 1, "stats %d %d", E.requests, E.token_requests);
  hyp_action again;
  hyp_input in = {1001, NULL, NULL, NULL};
  CHECK(hyp_call_step(&E, &c, &in, &again) != NULL, "a step after the end is misuse");
  hyp_call_free(&E, &c);
  /* the next call reuses the token */
  call(&c, "GET", "/users", 1);
  a = step(&E, &c, 1001, NULL);
  CHECK(a->type == HYP_ACT_SEND && !a->out->is_token, "no second token request");
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void one_fetch_at_a_time(void) {
  hyp_engine E;
  hyp_call a1, a2;
  hyp_result r = {0};
  engine(&E);
  call(&a1, "GET", "/a", 1);
  call(&a2, "GET", "/b", 1);
  const hyp_action *a = step(&E, &a1, 1000, NULL);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "first call fetches");
  a = step(&E, &a2, 1000, NULL);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds == 0.05 && a->jitter == 0, "second call waits for it");
  answer(&r, 200, TOKEN_OK, NULL);
  a = step(&E, &a1, 1000.1, &r);
  CHECK(a->type == HYP_ACT_SEND && !a->out->is_token, "first call goes on");
  a = step(&E, &a2, 1000.1, NULL);
  CHECK(a->type == HYP_ACT_SEND && !a->out->is_token, "second call uses the same token");
  CHECK(E.token_requests == 1, "one token request, got %d", E.token_requests);
  hyp_call_free(&E, &a1);
  hyp_call_free(&E, &a2);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

/* Calls waiting for another's token fetch share its outcome: they wait while
 * it backs off, and fail with its error when it fails for good (no fetch of
 * their own); a later call fetches again. */
static void waiters_share_the_fetch(void) {
  hyp_engine E;
  hyp_call a1, a2, a3;
  hyp_result r = {0};
  engine(&E);
  E.cfg.max_retries = 1;
  call(&a1, "GET", "/a", 1);
  call(&a2, "GET", "/b", 1);
  const hyp_action *a = step(&E, &a1, 1000, NULL);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "first call fetches");
  a = step(&E, &a2, 1000, NULL);
  CHECK(a->type == HYP_ACT_SLEEP, "second call waits");
  answer(&r, 503, "{}", "retry-after", "40", NULL);
  a = step(&E, &a1, 1000.1, &r);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds == 40, "the fetch backs off 40 s, got %d %g", a->type, a->seconds);
  a = step(&E, &a2, 1035, NULL);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds == 0.05, "during the backoff the second call still waits");
  a = step(&E, &a1, 1041, NULL);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "the first call retries the fetch");
  answer(&r, 401, "{\"title\":\"bad client\"}", NULL);
  a = step(&E, &a1, 1041.1, &r);
  CHECK(a->type == HYP_ACT_FAIL && strcmp(a->error->kind, "auth") == 0, "the fetch fails: auth");
  a = step(&E, &a2, 1041.2, NULL);
  CHECK(a->type == HYP_ACT_FAIL && strcmp(a->error->kind, "auth") == 0 && a->error->status == 401,
        "the waiter fails the same way, got %d", a->type);
  CHECK(a->type != HYP_ACT_FAIL || (a->error->answer && a->error->answer->status == 401 &&
                                    strstr(a->error->answer->body.data, "bad client")),
        "with a copy of the answer");
  CHECK(a->type != HYP_ACT_FAIL || strcmp(a->error->url, E.cfg.token_url) == 0, "naming the token URL");
  CHECK(E.token_requests == 2, "two token attempts in all, got %d", E.token_requests);
  call(&a3, "GET", "/c", 1);
  a = step(&E, &a3, 1042, NULL);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "a later call fetches again");
  hyp_call_free(&E, &a1);
  hyp_call_free(&E, &a2);
  hyp_call_free(&E, &a3);
  CHECK(!E.fetching, "freed calls leave no fetch behind");
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void cache_and_hooks_are_actions(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  E.cfg.has_cache = E.cfg.has_on_request = E.cfg.has_on_response = 1;
  call(&c, "GET", "/u", 1);
  hyp_action act;
  hyp_input in = {1000, NULL, NULL, NULL};
  hyp_call_step(&E, &c, &in, &act);
  CHECK(act.type == HYP_ACT_CACHE_GET, "asks the cache first, got %d", act.type);
  hyp_call_step(&E, &c, &in, &act); /* a miss */
  CHECK(act.type == HYP_ACT_ON_REQUEST && act.out->is_token, "on_request for the token request");
  hyp_call_step(&E, &c, &in, &act);
  CHECK(act.type == HYP_ACT_SEND && act.out->is_token, "then sends it");
  answer(&r, 200, TOKEN_OK, NULL);
  in.result = &r;
  hyp_call_step(&E, &c, &in, &act);
  CHECK(act.type == HYP_ACT_ON_RESPONSE && act.in == &r, "on_response with the answer");
  in.result = NULL;
  hyp_call_step(&E, &c, &in, &act);
  CHECK(act.type == HYP_ACT_CACHE_SET && E.token.access_token && !strcmp(E.token.access_token, "tok-1"),
        "offers the new token to the cache");
  hyp_call_step(&E, &c, &in, &act);
  CHECK(act.type == HYP_ACT_ON_REQUEST && !act.out->is_token, "on_request for the call");
  hyp_call_free(&E, &c);
  /* a cached token is taken (a second client sharing the cache) */
  hyp_engine E2;
  engine(&E2);
  E2.cfg.has_cache = 1;
  call(&c, "GET", "/u", 1);
  hyp_cached tok = {.access_token = "shared-tok", .access_len = 10, .expires_at = 5000, .lifetime = 3600,
                    .scope = "users.read"};
  in.result = NULL;
  hyp_call_step(&E2, &c, &in, &act);
  CHECK(act.type == HYP_ACT_CACHE_GET, "asks the cache");
  in.cached = &tok;
  hyp_call_step(&E2, &c, &in, &act);
  CHECK(act.type == HYP_ACT_SEND && !strcmp(line(act.out, "Authorization"), "Bearer shared-tok"),
        "sends with the cached token");
  CHECK(E2.token_requests == 0, "no token request");
  /* a cached token that cannot go into a header is a miss */
  hyp_call_free(&E2, &c);
  hyp_engine_free(&E2);
  engine(&E2);
  E2.cfg.has_cache = 1;
  call(&c, "GET", "/u", 1);
  hyp_cached bad = {.access_token = "bad\ntoken", .access_len = 9, .expires_at = 5000, .lifetime = 3600};
  in.cached = NULL;
  hyp_call_step(&E2, &c, &in, &act);
  in.cached = &bad;
  hyp_call_step(&E2, &c, &in, &act);
  CHECK(act.type == HYP_ACT_SEND && act.out->is_token, "fetches instead of sending a bad token");
  hyp_call_free(&E2, &c);
  hyp_engine_free(&E2);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void refused_token(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  call(&c, "GET", "/u", 1);
  step(&E, &c, 1000, NULL);
  answer(&r, 200, TOKEN_OK, NULL);
  step(&E, &c, 1000, &r);
  answer(&r, 401, "{\"title\":\"Invalid token\"}", "content-type", "application/json", NULL);
  const hyp_action *a = step(&E, &c, 1000, &r);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "a 401 fetches a new token");
  answer(&r, 200, "{\"access_token\":\"tok-2\",\"expires_in\":3600}", NULL);
  a = step(&E, &c, 1000, &r);
  CHECK(a->type == HYP_ACT_SEND && !strcmp(line(a->out, "Authorization"), "Bearer tok-2"), "replays");
  answer(&r, 401, "{}", "content-type", "application/json", NULL);
  a = step(&E, &c, 1000, &r);
  CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->kind, "auth") && a->error->answer == &r,
        "a fresh token refused too: auth, no loop");
  CHECK(!strcmp(a->error->message, "access token refused: "), "message prefix %s", a->error->message);
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void retries_and_waits(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  call(&c, "GET", "/u", 1);
  step(&E, &c, 1000, NULL);
  answer(&r, 200, TOKEN_OK, NULL);
  step(&E, &c, 1000, &r);
  double expect[] = {0.5, 1, 2, 4};
  for (int i = 0; i < 4; i++) {
    answer(&r, i % 2 ? 503 : 500, "", "x-ratelimit-reset", "50", "x-ratelimit-remaining", "900",
           "x-ratelimit-limit", "1000", NULL);
    const hyp_action *a = step(&E, &c, 1000, &r);
    CHECK(a->type == HYP_ACT_SLEEP && a->seconds == HYP_MIN_WAIT && a->jitter == expect[i],
          "5xx #%d: full jitter over [0, %g), not the quota reset (got %g + %g)", i, expect[i], a->seconds,
          a->jitter);
    a = step(&E, &c, 1000, NULL);
    CHECK(a->type == HYP_ACT_SEND, "retry #%d", i);
  }
  answer(&r, 503, "", NULL);
  const hyp_action *a = step(&E, &c, 1000, &r);
  CHECK(a->type == HYP_ACT_FAIL && a->error->retryable && a->error->attempts == 5, "gives up after 4 retries");
  hyp_call_free(&E, &c);
  /* a 429 waits what the server says, with up to 10 % (at most 1 s) of jitter */
  call(&c, "GET", "/u", 1);
  step(&E, &c, 1000, NULL);
  answer(&r, 429, "", "x-ratelimit-reset", "7", "x-ratelimit-remaining", "0", NULL);
  a = step(&E, &c, 1000, &r);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds == 7 && fabs(a->jitter - 0.7) < 1e-9, "429: reset 7 s (%g + %g)",
        a->seconds, a->jitter);
  step(&E, &c, 1007.5, NULL);
  /* Retry-After beyond max_wait fails at once */
  answer(&r, 429, "", "retry-after", "3600", NULL);
  a = step(&E, &c, 1008, &r);
  CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->kind, "rate_limited") && a->error->retry_after == 3600,
        "a wait over max_wait fails as rate_limited");
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void no_resend(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  call(&c, "POST", "/files", 0);
  step(&E, &c, 1000, NULL);
  answer(&r, 200, TOKEN_OK, NULL);
  const hyp_action *a = step(&E, &c, 1000, &r);
  CHECK(a->out->fresh, "a non-idempotent request goes on a fresh connection");
  broken(&r, HYP_F_CONNECT, 0);
  a = step(&E, &c, 1000, &r);
  CHECK(a->type == HYP_ACT_SLEEP, "a connect failure is retried (nothing reached the server)");
  step(&E, &c, 1001, NULL);
  answer(&r, 429, "", "retry-after", "1", NULL);
  a = step(&E, &c, 1001, &r);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds == 1, "a 429 is retried");
  step(&E, &c, 1003, NULL);
  broken(&r, HYP_F_RECV, 1);
  a = step(&E, &c, 1003, &r);
  CHECK(a->type == HYP_ACT_FAIL && !a->error->retryable && !strcmp(a->error->kind, "network"),
        "a failure after sending is not re-sent");
  CHECK(strstr(a->error->message, "may have reached the server") != NULL, "says why: %s", a->error->message);
  hyp_call_free(&E, &c);
  call(&c, "POST", "/files", 0);
  step(&E, &c, 1004, NULL);
  answer(&r, 500, "", NULL);
  a = step(&E, &c, 1004, &r);
  CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->kind, "http") && !a->error->retryable, "nor after a 500");
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void deadline(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  call(&c, "GET", "/u", 1);
  c.req.deadline = 5;
  step(&E, &c, 1000, NULL);
  answer(&r, 200, TOKEN_OK, NULL);
  const hyp_action *a = step(&E, &c, 1000, &r);
  CHECK(a->out->timeout == 5 && a->out->deadline == 5, "the attempt's timeout is cut to the deadline");
  answer(&r, 429, "", "retry-after", "10", NULL);
  a = step(&E, &c, 1001, &r);
  CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->kind, "timeout"), "a wait that must cross it fails at once");
  hyp_call_free(&E, &c);
  call(&c, "GET", "/u", 1);
  c.req.deadline = 5;
  E.cfg.backoff_base = 6;
  step(&E, &c, 2000, NULL);
  answer(&r, 500, "", NULL);
  a = step(&E, &c, 2001, &r);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds + a->jitter <= 4 + 1e-9, "the jitter is cut to the time left (%g)",
        a->jitter);
  hyp_call_free(&E, &c);
  call(&c, "GET", "/u", 1);
  c.req.deadline = 5;
  E.cfg.backoff_base = 20;
  step(&E, &c, 3000, NULL);
  answer(&r, 500, "", NULL);
  a = step(&E, &c, 3001, &r);
  CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->kind, "timeout"),
        "less than half the jitter left: no hurried retry, a timeout at once");
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void pacing(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  call(&c, "GET", "/u", 1);
  step(&E, &c, 1000, NULL);
  answer(&r, 200, TOKEN_OK, NULL);
  step(&E, &c, 1000, &r);
  answer(&r, 200, "", "x-ratelimit-limit", "10, 10;w=1", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1",
         NULL);
  step(&E, &c, 1000, &r);
  hyp_call_free(&E, &c);
  call(&c, "GET", "/u", 1);
  const hyp_action *a = step(&E, &c, 1000.2, NULL);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds > 0.79 && a->seconds < 0.81, "waits for the reset (%g)", a->seconds);
  a = step(&E, &c, 1001.01, NULL);
  CHECK(a->type == HYP_ACT_SEND, "then sends");
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

/* Many calls at once: the requests in flight count as used, so 16 calls
 * with 10 left send no more than the quota allows before answers come back;
 * after the window, a fresh one is assumed and the waiters do not all go. */
static void pacing_in_flight(void) {
  hyp_engine E;
  hyp_call cs[16];
  hyp_result r = {0};
  engine(&E);
  call(&cs[0], "GET", "/u", 1);
  step(&E, &cs[0], 1000, NULL);
  answer(&r, 200, TOKEN_OK, "x-ratelimit-limit", "10, 10;w=1", "x-ratelimit-remaining", "10", "x-ratelimit-reset",
         "1", NULL);
  const hyp_action *a = step(&E, &cs[0], 1000, &r);
  CHECK(a->type == HYP_ACT_SEND, "the first call goes");
  int sent = 1;
  for (int i = 1; i < 16; i++) {
    call(&cs[i], "GET", "/u", 1);
    a = step(&E, &cs[i], 1000, NULL);
    if (a->type == HYP_ACT_SEND) sent++;
  }
  CHECK(sent >= 5 && sent <= 10, "at once: at least half the quota, never more than it (%d sent)", sent);
  CHECK(E.rate.inflight == sent, "%ld in flight", E.rate.inflight);
  /* nothing answers; the window ends: a fresh window lets half go at once, not all */
  int again = 0;
  for (int i = sent; i < 16; i++) {
    a = step(&E, &cs[i], 1001.01, NULL);
    if (a->type == HYP_ACT_SEND) again++;
  }
  CHECK(again <= 10 - sent + 5 && again >= 1, "after the window: %d of the waiters go", again);
  /* an answer out of order (more remaining than the last) is not a new window */
  answer(&r, 200, "", "x-ratelimit-limit", "10, 10;w=1", "x-ratelimit-remaining", "3", "x-ratelimit-reset", "1",
         NULL);
  step(&E, &cs[0], 1001.02, &r);
  answer(&r, 200, "", "x-ratelimit-limit", "10, 10;w=1", "x-ratelimit-remaining", "5", "x-ratelimit-reset", "1",
         NULL);
  step(&E, &cs[1], 1001.03, &r);
  CHECK(E.rate.remaining == 3, "the lower count stays (%ld)", E.rate.remaining);
  for (int i = 0; i < 16; i++) hyp_call_free(&E, &cs[i]);
  CHECK(E.rate.inflight == 0, "freed calls leave nothing in flight (%ld)", E.rate.inflight);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

/* Every wait is one a driver can perform (HYP_MIN_WAIT: nginx sleeps in
 * whole milliseconds), whatever fraction of a millisecond the pacing or a
 * server asks for; and a driver whose clock moves by what it slept always
 * gets to send (no livelock of zero waits, issue 16 §0). The server counts a
 * quota of 20 per fixed 1 s window, as the local server does. */
static void waits_are_performable(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  double now = 1000.3, window = -1;
  int count = 0, sleeps = 0, short_ones = 0, sent = 0;
  char remaining[16], reset[16];
  for (int i = 0; i < 400; i++) {
    call(&c, "GET", "/u", 1);
    const hyp_action *a = step(&E, &c, now, NULL);
    for (int n = 0; n < 1000 && a->type != HYP_ACT_DONE && a->type != HYP_ACT_FAIL; n++) {
      if (a->type == HYP_ACT_SLEEP) {
        sleeps++;
        if (a->seconds < HYP_MIN_WAIT) short_ones++;
        now += a->seconds;
        a = step(&E, &c, now, NULL);
        continue;
      }
      now += 0.0001; /* the answer comes 0.1 ms later */
      if (floor(now) != window) window = floor(now), count = 0;
      count++;
      snprintf(remaining, sizeof remaining, "%d", count > 20 ? 0 : 20 - count);
      snprintf(reset, sizeof reset, "%d", (int)ceil(window + 1 - now - 1e-6) < 1 ? 1 : (int)ceil(window + 1 - now - 1e-6));
      if (a->out->is_token)
        answer(&r, 200, TOKEN_OK, "x-ratelimit-limit", "20, 20;w=1", "x-ratelimit-remaining", remaining,
               "x-ratelimit-reset", reset, NULL);
      else
        answer(&r, count > 20 ? 429 : 200, "", "x-ratelimit-limit", "20, 20;w=1", "x-ratelimit-remaining",
               remaining, "x-ratelimit-reset", reset, NULL);
      if (!a->out->is_token) sent++;
      a = step(&E, &c, now, &r);
    }
    CHECK(a->type == HYP_ACT_DONE, "call %d ends (%d: %s)", i, a->type,
          a->type == HYP_ACT_FAIL ? a->error->message : "");
    hyp_call_free(&E, &c);
  }
  CHECK(sleeps > 0 && short_ones == 0, "%d waits, %d shorter than %g s", sleeps, short_ones, HYP_MIN_WAIT);
  CHECK(now - 1000.3 > 19 && now - 1000.3 < 21.5, "400 calls at 20/s take about 20 s (%g)", now - 1000.3);
  /* a Retry-After of 0 on a 503 asks for no wait at all: still at least 1 ms */
  call(&c, "GET", "/u", 1);
  step(&E, &c, now + 5, NULL);
  answer(&r, 503, "", "retry-after", "0", NULL);
  const hyp_action *a = step(&E, &c, now + 5, &r);
  CHECK(a->type == HYP_ACT_SLEEP && a->seconds >= HYP_MIN_WAIT, "Retry-After: 0 waits %g s", a->seconds);
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

/* Tickets of the token cache: a ticket makes the call the fetcher; it goes
 * back with CACHE_SET, or with CACHE_RELEASE when the fetch fails (the error
 * along) or a token turned up without it; a FAIL follows the release. */
static void cache_tickets(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  E.cfg.has_cache = E.cfg.has_cache_release = 1;
  hyp_cached ticket = {.ticket = "T-1", .ticket_len = 3};
  call(&c, "GET", "/u", 1);
  const hyp_action *a = step(&E, &c, 1000, NULL);
  CHECK(a->type == HYP_ACT_CACHE_GET, "asks the cache");
  hyp_input in = {1000, NULL, &ticket, NULL};
  hyp_action act;
  hyp_call_step(&E, &c, &in, &act);
  CHECK(act.type == HYP_ACT_SEND && act.out->is_token, "a ticket: this call fetches");
  answer(&r, 503, "", "retry-after", "1", NULL);
  a = step(&E, &c, 1000.1, &r);
  CHECK(a->type == HYP_ACT_SLEEP, "the token request backs off");
  /* meanwhile a token turns up (as if another call had brought it) */
  char msg[100];
  CHECK(hyp_token_accept(&E.token, &E.cfg, TOKEN_OK, strlen(TOKEN_OK), 1001, msg, sizeof msg) == 0, "%s", msg);
  a = step(&E, &c, 1001.2, NULL);
  CHECK(a->type == HYP_ACT_CACHE_RELEASE && a->ticket && !strcmp(a->ticket, "T-1") && !a->error,
        "the unused ticket goes back (%d)", a->type);
  a = step(&E, &c, 1001.2, NULL);
  CHECK(a->type == HYP_ACT_SEND && !a->out->is_token, "then the call goes on");
  hyp_call_free(&E, &c);
  hyp_token_free(&E.token);
  /* a refused fetch: the ticket goes back with the error, then the call fails */
  call(&c, "GET", "/u", 1);
  step(&E, &c, 2000, NULL);
  hyp_call_step(&E, &c, &(hyp_input){2000, NULL, &ticket, NULL}, &act);
  answer(&r, 401, "{\"title\":\"Invalid client credentials\"}", NULL);
  a = step(&E, &c, 2000.1, &r);
  CHECK(a->type == HYP_ACT_CACHE_RELEASE && a->error && !strcmp(a->error->kind, "auth") && a->error->status == 401,
        "the ticket goes back with the failure (%d)", a->type);
  a = step(&E, &c, 2000.1, NULL);
  CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->kind, "auth"), "then the call fails (%d)", a->type);
  hyp_call_free(&E, &c);
  /* without a release function the ticket is dropped and the call fails at once */
  E.cfg.has_cache_release = 0;
  call(&c, "GET", "/u", 1);
  step(&E, &c, 3000, NULL);
  hyp_call_step(&E, &c, &(hyp_input){3000, NULL, &ticket, NULL}, &act);
  a = step(&E, &c, 3000.1, &r);
  CHECK(a->type == HYP_ACT_FAIL, "no release function: FAIL at once (%d)", a->type);
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

/* The shared store: every request asks for a slot (ACQUIRE) and tells it what
 * the last answers said; a reserved slot is sent after its wait without asking
 * again; a 429 asks the fleet to pause; a store that fails opens the breaker
 * and the client paces alone with its share of the quota. */
static void store_actions(void) {
  hyp_engine E;
  hyp_call c;
  hyp_result r = {0};
  engine(&E);
  E.cfg.has_store = 1;
  hyp_action act;
  call(&c, "GET", "/u", 1);
  const hyp_action *a = step(&E, &c, 1000, NULL);
  CHECK(a->type == HYP_ACT_SEND && a->out->is_token, "the token request does not queue for a slot (%d)", a->type);
  answer(&r, 200, TOKEN_OK, "x-ratelimit-limit", "20, 20;w=1", "x-ratelimit-remaining", "19", "x-ratelimit-reset",
         "1", NULL);
  a = step(&E, &c, 1000.01, &r);
  CHECK(a->type == HYP_ACT_ACQUIRE && a->obs && a->obs->limit == 20 && a->obs->window == 1 &&
            a->obs->remaining == 19 && a->obs->reset == 1 && a->obs->pause == 0 && a->seconds == 60,
        "the API request asks, telling what the token answer said (%d)", a->type);
  hyp_grant later = {0, 0.2, 1, 3};
  hyp_call_step(&E, &c, &(hyp_input){1000.01, NULL, NULL, &later}, &act);
  CHECK(act.type == HYP_ACT_SLEEP && fabs(act.seconds - 0.2) < 1e-9, "a reserved slot: wait for it (%g)", act.seconds);
  CHECK(E.fleet == 3, "the fleet as the store said (%d)", E.fleet);
  a = step(&E, &c, 1000.21, NULL);
  CHECK(a->type == HYP_ACT_SEND && !a->out->is_token, "then send without asking again (%d)", a->type);
  answer(&r, 429, "", "retry-after", "2", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1", NULL);
  a = step(&E, &c, 1000.25, &r);
  CHECK(a->type == HYP_ACT_SLEEP, "a 429 waits (%d)", a->type);
  a = step(&E, &c, 1000.25 + a->seconds, NULL);
  CHECK(a->type == HYP_ACT_ACQUIRE && a->obs && a->obs->pause > 1.9 && a->obs->pause <= 2,
        "the retry asks, telling the fleet to pause (%g)", a->obs ? a->obs->pause : -1);
  /* the store is down: the breaker opens, the call paces alone and goes */
  hyp_grant down = {1, 0, 0, 0};
  hyp_call_step(&E, &c, &(hyp_input){1002.5, NULL, NULL, &down}, &act);
  CHECK(act.type == HYP_ACT_SEND && E.store_down_until > 1002.5, "a failed store: local pacing (%d)", act.type);
  answer(&r, 200, "{}", NULL);
  a = step(&E, &c, 1002.6, &r);
  CHECK(a->type == HYP_ACT_DONE, "done");
  hyp_call_free(&E, &c);
  call(&c, "GET", "/u", 1);
  a = step(&E, &c, 1003, NULL);
  CHECK(a->type == HYP_ACT_SEND, "the breaker is open: no ACQUIRE (%d)", a->type);
  hyp_call_free(&E, &c);
  call(&c, "GET", "/u", 1);
  a = step(&E, &c, 1005, NULL);
  CHECK(a->type == HYP_ACT_ACQUIRE, "after HYP_STORE_BREAK the store is asked again (%d)", a->type);
  /* a wait longer than max_wait fails at once */
  hyp_grant long_wait = {0, 120, 0, 3};
  hyp_call_step(&E, &c, &(hyp_input){1005, NULL, NULL, &long_wait}, &act);
  CHECK(act.type == HYP_ACT_FAIL && !strcmp(act.error->kind, "rate_limited") && act.error->retry_after == 120,
        "a wait above max_wait: rate_limited (%d)", act.type);
  hyp_call_free(&E, &c);
  /* a reserved slot that was not used on time (the call waited for something else) is stale */
  call(&c, "GET", "/u", 1);
  E.store_down_until = 0;
  step(&E, &c, 3000, NULL); /* ACQUIRE */
  hyp_grant soon = {0, 0.2, 1, 3};
  hyp_call_step(&E, &c, &(hyp_input){3000, NULL, NULL, &soon}, &act);
  a = step(&E, &c, 3001, NULL); /* woken 0.8 s after its slot */
  CHECK(a->type == HYP_ACT_ACQUIRE, "a stale slot: ask again (%d)", a->type);
  hyp_call_free(&E, &c);
  /* a fleet of 4 pacing alone: this client takes a quarter of what remains */
  E.store_down_until = 2000;
  E.fleet = 4;
  E.rate.known = 1;
  E.rate.limit = 20;
  E.rate.remaining = 9; /* alone it would send now; a quarter (2 of 5) is spread over 0.5 s */
  E.rate.reset_at = 1010;
  E.rate.answered = 1;
  E.rate.last_send = 1009.45;
  E.rate.inflight = 0;
  call(&c, "GET", "/u", 1);
  a = step(&E, &c, 1009.5, NULL);
  CHECK(a->type == HYP_ACT_SLEEP, "9 of 20 left, a quarter each: paced (%d)", a->type);
  hyp_call_free(&E, &c);
  hyp_result_free(&r);
  hyp_engine_free(&E);
}

static void token_answers(void) {
  static const struct {
    const char *body, *message;
  } cases[] = {
      {"not json", "token response is not valid JSON"},
      {"[1]", "token response is not a JSON object"},
      {"{\"access_token\":\"a\\u0000b\"}", "token response has an access_token with a control or non-ASCII byte"},
      {"{\"access_token\":\"a\\r\\nb\"}", "token response has an access_token with a control or non-ASCII byte"},
      {"{\"token_type\":\"Bearer\"}", "token response has no access_token"},
      {"{\"access_token\":\"t\",\"token_type\":\"mac\"}", "token response has token_type \"mac\", expected Bearer"},
      {"{\"access_token\":\"t\",\"x\":[1,{\"y\":[]}],\"expires_in\":\"3600\"}", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hyp_engine E;
    hyp_call c;
    hyp_result r = {0};
    engine(&E);
    call(&c, "GET", "/u", 1);
    step(&E, &c, 1000, NULL);
    answer(&r, 200, cases[i].body, NULL);
    const hyp_action *a = step(&E, &c, 1000, &r);
    if (cases[i].message)
      CHECK(a->type == HYP_ACT_FAIL && !strcmp(a->error->message, cases[i].message), "%s → %s", cases[i].body,
            a->type == HYP_ACT_FAIL ? a->error->message : "no failure");
    else
      CHECK(a->type == HYP_ACT_SEND && E.token.lifetime == 300, "%s is accepted, expires_in default 300 s",
            cases[i].body);
    hyp_call_free(&E, &c);
    hyp_result_free(&r);
    hyp_engine_free(&E);
  }
  hyp_tokfields f;
  const char *why;
  const char *text = "{\"scope\":\"a\\u00e9\\ud83d\\ude00\",\"expires_in\":1e3,\"scope\":\"b c\"}";
  int rc = hyp_tokjson_parse(text, strlen(text), &f, &why);
  CHECK(rc == 0, "parses %s: %s", text, why ? why : "");
  CHECK(rc == 0 && !strcmp(f.scope, "b c") && f.expires_in == 1000, "last member wins, numbers read");
  hyp_tokfields_free(&f);
  text = "{\"scope\":\"a\\u00e9\\ud83d\\ude00\"}";
  rc = hyp_tokjson_parse(text, strlen(text), &f, &why);
  CHECK(rc == 0 && !strcmp(f.scope, "a\xc3\xa9\xf0\x9f\x98\x80"), "escapes and surrogate pairs decode to UTF-8");
  hyp_tokfields_free(&f);
  char deep[2000];
  memset(deep, '[', sizeof deep);
  memcpy(deep, "{\"x\":", 5);
  CHECK(hyp_tokjson_parse(deep, sizeof deep, &f, &why) == -1, "deep nesting is refused, not recursed");
}

int main(void) {
  token_then_call();
  one_fetch_at_a_time();
  waiters_share_the_fetch();
  cache_and_hooks_are_actions();
  refused_token();
  retries_and_waits();
  no_resend();
  deadline();
  pacing();
  pacing_in_flight();
  waits_are_performable();
  cache_tickets();
  store_actions();
  token_answers();
  printf("engine_test: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
