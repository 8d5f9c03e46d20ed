/*
 * fuzz/engine_fuzz.c — libFuzzer target for the engine's step function,
 * linked with csrc/engine/ alone (no Lua, no libcurl include path).
 *
 * The input configures an engine (retries, backoff, max_wait, deadline,
 * throttle, cache and hooks) and up to two calls at a time (method,
 * idempotent or not, token-only), then drives them as a driver would: every
 * SEND gets a scripted result (a transport failure of any class, sent or not;
 * or a status with rate-limit, Retry-After and other headers, and a body: a
 * token answer around fuzzed fields or raw bytes), every CACHE_GET a fuzzed
 * cached token or a miss, every SLEEP is slept (or, with a flag, the clock
 * jumps anywhere, backwards too). Up to three calls per engine, each reset and
 * reused. Invariants checked at every action (abort on violation):
 *   - waits are finite and never negative, at most max_wait (or the token
 *     poll), end within the deadline, and jitter is at most the backoff cap;
 *   - never more attempts than 1 + max_retries + the 401 replays;
 *   - an API request that is not idempotent is not sent again after a
 *     failure once bytes may have reached the server, nor after a 5xx;
 *   - no CR, LF or NUL inside an outgoing header line; the bearer token is
 *     the engine's token;
 *   - DONE only after a 2xx answer; FAIL with a known kind and a message;
 *   - a step after the end is misuse; with an honest clock a call ends
 *     within a bound of steps.
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../csrc/engine/engine.h"
#include "bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS 3000
#define MAX_REPLAYS 3

#define ENSURE(cond)                                                                  \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "engine_fuzz: invariant failed at %s:%d: %s\n", __FILE__,       \
              __LINE__, #cond);                                                       \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

static const long STATUSES[] = {200, 201, 204, 299, 304, 400, 401, 403, 404, 405, 409, 422, 429,
                                500, 501, 502, 503, 504, 599, 100, 0,   -1,  401, 429, 503, 200};
static const char *const NAMES[] = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                                    "ratelimit-limit",   "ratelimit-remaining",   "ratelimit-reset",
                                    "ratelimit",         "ratelimit-policy",      "retry-after",
                                    "content-type",      "x-ratelimit-limit-second"};
static const char *const VALUES[] = {
    "0",        "1",           "10",          "60",          "3600",       "86400",
    "86401",    "-1",          "1e300",       "-1e300",      "nan",        "inf",
    "1.5",      "0.0001",      "1700000000",  "1700000000000", "99999999999999999999",
    "10, 10;w=1", "100;w=60",  "limit=10, remaining=0, reset=30", "\"default\";r=0;t=30",
    "q=10;w=1", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Dec 2026 20:00:00 GMT", "",
    " 5 ",      "application/json", "2147483648", "9223372036854775808", "0x10", "1e9"};
static const double NUMBERS[] = {0, 0.001, 0.05, 0.5, 1, 2, 5, 30, 60, 3600, 86400, 604800};
static const double STARTS[] = {0, 1000, 1.7e9, 1e12, -5};
static const int FAILURES[] = {HYP_F_RESOLVE, HYP_F_CONNECT, HYP_F_TLS,     HYP_F_TLS_VERIFY, HYP_F_TIMEOUT,
                               HYP_F_SEND,    HYP_F_RECV,    HYP_F_CLOSED,  HYP_F_PARTIAL,    HYP_F_TOO_LARGE,
                               HYP_F_IO,      HYP_F_OTHER};
static const char *const KINDS[] = {"http", "rate_limited", "auth", "network", "timeout", "decode", "io"};

/* One call being driven. */
typedef struct slot {
  hyp_call c;
  hyp_result res;
  int active;
  int last;              /* type of the last action */
  int is_token;          /* the last SEND was the token request */
  int must_fail;         /* the next decision must be FAIL (no re-send) */
  int saw_2xx;           /* the last API answer was 2xx */
  double wake;           /* end of a SLEEP */
  int steps;
  int idempotent;
} slot;

typedef struct drive {
  fz f;
  hyp_engine E;
  slot s[2];
  double now;
  int honest;            /* the clock only moves forward, sleeps are slept in full */
  int calls_left;
  char tok[64];
  size_t toklen;
} drive;

static double number(fz *f) { return NUMBERS[fz_pick(f, FZ_COUNT(NUMBERS))]; }

/* A header value: from the table or raw bytes. */
static void add_header(drive *d, hyp_result *r) {
  const char *name = NAMES[fz_pick(&d->f, FZ_COUNT(NAMES))];
  char raw[48];
  unsigned how = fz_u8(&d->f);
  if (how & 1) {
    size_t n = fz_bytes(&d->f, raw, sizeof raw);
    hyp_header_add(&r->headers, name, strlen(name), raw, n);
  } else {
    const char *v = VALUES[(how >> 1) % FZ_COUNT(VALUES)];
    hyp_header_add(&r->headers, name, strlen(name), v, strlen(v));
  }
}

/* A body: a token answer around fuzzed fields, JSON bits, or raw bytes. */
static void add_body(drive *d, hyp_result *r) {
  char raw[200];
  unsigned how = fz_pick(&d->f, 4);
  if (how == 0) return;
  if (how == 1) {
    size_t n = fz_bytes(&d->f, raw, sizeof raw);
    hyp_buf_add(&r->body, raw, n);
    return;
  }
  char tok[80], exp[40];
  size_t tn = fz_bytes(&d->f, tok, sizeof tok - 1), en;
  tok[tn] = 0;
  if (how == 2 || tn == 0) tn = (size_t)snprintf(tok, sizeof tok, "tok-%u", fz_u8(&d->f));
  unsigned e = fz_u8(&d->f);
  if (e & 1) {
    en = fz_bytes(&d->f, exp, sizeof exp - 1);
    exp[en] = 0;
  } else {
    snprintf(exp, sizeof exp, "%s", VALUES[(e >> 1) % FZ_COUNT(VALUES)]);
  }
  if (exp[0] == 0 || strspn(exp, "0123456789.-+eE") != strlen(exp)) snprintf(exp, sizeof exp, "3600");
  hyp_buf_adds(&r->body, "{\"access_token\":\"");
  hyp_buf_add(&r->body, tok, tn);
  hyp_buf_addf(&r->body, "\",\"token_type\":\"Bearer\",\"expires_in\":%s,\"scope\":\"a b\"}", exp);
}

/* The result of a SEND, scripted. */
static void make_result(drive *d, slot *s) {
  hyp_result *r = &s->res;
  hyp_result_reset(r);
  unsigned how = fz_u8(&d->f);
  r->elapsed = number(&d->f);
  if (how < 48) {
    r->failure = FAILURES[how % FZ_COUNT(FAILURES)];
    r->sent = (how >> 4) & 1;
    r->code = (int)(how % 7) - 1;
    r->message = (how & 8) ? "scripted failure" : NULL;
  } else {
    r->status = STATUSES[fz_pick(&d->f, FZ_COUNT(STATUSES))];
    if (how & 0x40) r->status = (long)fz_u16(&d->f) - 100;
    unsigned nh = fz_pick(&d->f, 6);
    for (unsigned i = 0; i < nh; i++) add_header(d, r);
    add_body(d, r);
  }
}

/* Moves the clock after an action. */
static void tick(drive *d, double by) {
  if (d->honest) {
    if (by > 0 && isfinite(by)) d->now += by;
  } else {
    unsigned j = fz_u8(&d->f);
    d->now += (j & 0x80) ? -(double)(j & 0x7f) : (double)j * by;
  }
}

/* Checks one outgoing request; current: it was just built (the bearer token is the
 * engine's; by the SEND that follows an ON_REQUEST another call may have replaced it). */
static void check_out(drive *d, const hyp_outgoing *o, int current) {
  ENSURE(o && o->url && o->method && o->headers);
  ENSURE(isfinite(o->timeout) && o->timeout >= 0);
  ENSURE(isfinite(o->deadline) && o->deadline >= 0);
  const char *p = o->headers->data;
  size_t left = o->headers->len;
  const char *bearer = NULL;
  for (int i = 0; i < o->nheaders; i++) {
    ENSURE(p && left > 0);
    size_t n = strnlen(p, left);
    ENSURE(n < left); /* NUL-terminated inside the buffer */
    ENSURE(!memchr(p, '\r', n) && !memchr(p, '\n', n));
    if (strncmp(p, "Authorization: Bearer ", 22) == 0) bearer = p + 22;
    p += n + 1;
    left -= n + 1;
  }
  if (!o->is_token) {
    ENSURE(bearer && !hyp_token_problem(bearer, strlen(bearer)));
    if (current) ENSURE(d->E.token.access_token && strcmp(bearer, d->E.token.access_token) == 0);
  }
}

/* Starts a new call in s (reusing it when it ran before). */
static void start(drive *d, slot *s, int first) {
  fz *f = &d->f;
  unsigned opt = fz_u8(f);
  int token_only = (opt & 7) == 7;
  if (first) hyp_call_init(&s->c, token_only);
  else hyp_call_reset(&d->E, &s->c, token_only);
  static const char *const METHODS[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};
  const char *m = METHODS[(opt >> 3) % FZ_COUNT(METHODS)];
  snprintf(s->c.req.method, sizeof s->c.req.method, "%s", m);
  hyp_buf_adds(&s->c.req.url, "https://api.example.test/v2/users");
  s->idempotent = s->c.req.idempotent = (opt >> 6) & 1;
  if (opt & 0x80) {
    hyp_buf_add(&s->c.req.headers, "X-Trace: 1", 11);
    s->c.req.nheaders = 1;
  }
  if (!strcmp(m, "POST")) {
    s->c.req.body_kind = HYP_BODY_MEMORY;
    s->c.req.body = "{}";
    s->c.req.body_len = 2;
  }
  unsigned more = fz_u8(f);
  if (more & 1) s->c.req.max_retries = (int)fz_pick(f, 6);
  if (more & 2) s->c.req.deadline = number(f);
  if (more & 4) s->c.req.timeout = number(f);
  s->active = 1;
  s->last = 0;
  s->must_fail = s->saw_2xx = 0;
  s->steps = 0;
  s->wake = d->now;
}

/* One step of the call in s, with the checks. */
static void step(drive *d, slot *s) {
  hyp_input in = {d->now, NULL, NULL, NULL};
  hyp_cached cached;
  hyp_grant grant;
  char scope[16];
  if (s->last == HYP_ACT_SEND) {
    make_result(d, s);
    in.result = &s->res;
    const hyp_result *r = &s->res;
    s->saw_2xx = !r->failure && r->status >= 200 && r->status < 300 && !s->is_token;
    s->must_fail = 0;
    if (!s->is_token && !s->idempotent) {
      int f = r->failure;
      int reached = r->sent && (f == HYP_F_TIMEOUT || f == HYP_F_SEND || f == HYP_F_RECV ||
                                f == HYP_F_CLOSED || f == HYP_F_PARTIAL);
      int s5xx = !f && (r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504);
      s->must_fail = reached || s5xx;
    }
  } else if (s->last == HYP_ACT_CACHE_GET && (fz_u8(&d->f) & 1)) {
    memset(&cached, 0, sizeof cached);
    switch (fz_pick(&d->f, 4)) {
    case 0: { /* a token */
      d->toklen = fz_bytes(&d->f, d->tok, sizeof d->tok - 1);
      d->tok[d->toklen] = 0;
      cached.access_token = d->tok;
      cached.access_len = d->toklen;
      cached.expires_at = d->now + number(&d->f) - 1;
      cached.lifetime = number(&d->f);
      size_t sn = fz_bytes(&d->f, scope, sizeof scope - 1);
      scope[sn] = 0;
      cached.scope = sn ? scope : NULL;
      break;
    }
    case 1: /* a ticket: this call fetches */
      d->toklen = fz_bytes(&d->f, d->tok, sizeof d->tok - 1);
      d->tok[d->toklen] = 0;
      cached.ticket = d->tok;
      cached.ticket_len = d->toklen;
      break;
    case 2: /* another fetch is out: ask again later */
      cached.wait = number(&d->f) - 1;
      break;
    default: /* a remembered refusal */
      cached.denied_status = (long)fz_pick(&d->f, 1000);
      cached.denied_message = fz_pick(&d->f, 2) ? "Invalid client credentials" : NULL;
    }
    in.cached = &cached;
  } else if (s->last == HYP_ACT_ACQUIRE) {
    memset(&grant, 0, sizeof grant);
    unsigned g = fz_u8(&d->f);
    grant.failed = g & 1;
    grant.reserved = (g >> 1) & 1;
    grant.wait = (g & 4) ? number(&d->f) - 1 : 0;
    grant.fleet = (int)fz_pick(&d->f, 40) - 1;
    in.grant = (g & 8) ? NULL : &grant; /* no grant at all counts as a failed store */
  }
  if (s->last == HYP_ACT_SLEEP && d->honest && d->now < s->wake) d->now = s->wake;
  in.now = d->now;
  hyp_action act;
  const char *misuse = hyp_call_step(&d->E, &s->c, &in, &act);
  ENSURE(misuse == NULL);
  s->steps++;
  hyp_call *c = &s->c;
  int max_retries = c->max_retries;
  ENSURE(c->retries <= max_retries);
  ENSURE(c->replayed <= MAX_REPLAYS);
  ENSURE(c->attempts <= 1 + max_retries + MAX_REPLAYS);
  if (s->must_fail && act.type != HYP_ACT_ON_RESPONSE) {
    ENSURE(act.type == HYP_ACT_FAIL || act.type == HYP_ACT_CACHE_RELEASE);
    s->must_fail = act.type == HYP_ACT_CACHE_RELEASE; /* the FAIL comes next */
  }
  switch (act.type) {
  case HYP_ACT_SEND:
    check_out(d, act.out, s->last != HYP_ACT_ON_REQUEST);
    s->is_token = act.out->is_token;
    tick(d, 0.01);
    break;
  case HYP_ACT_SLEEP: {
    const hyp_config *cfg = &d->E.cfg;
    ENSURE(isfinite(act.seconds) && act.seconds >= 0);
    ENSURE(isfinite(act.jitter) && act.jitter >= 0);
    ENSURE(act.seconds <= (cfg->max_wait > 0.05 ? cfg->max_wait : 0.05) + 1e-9);
    ENSURE(act.jitter <= (cfg->backoff_cap > 1 ? cfg->backoff_cap : 1) + 1e-9);
    if (c->deadline_at > 0) ENSURE(d->now + act.seconds + act.jitter <= c->deadline_at + 1e-6);
    double u = fz_u8(&d->f) / 256.0;
    s->wake = d->now + act.seconds + act.jitter * u;
    break;
  }
  case HYP_ACT_CACHE_GET:
  case HYP_ACT_CACHE_SET:
    ENSURE(d->E.cfg.has_cache);
    if (act.type == HYP_ACT_CACHE_SET) ENSURE(d->E.token.access_token != NULL);
    if (act.ticket) ENSURE(act.type == HYP_ACT_CACHE_SET && strlen(act.ticket) <= HYP_TICKET_MAX);
    break;
  case HYP_ACT_ACQUIRE:
    ENSURE(d->E.cfg.has_store && d->now >= d->E.store_down_until);
    ENSURE(isfinite(act.seconds) && act.seconds >= 0 && act.seconds <= d->E.cfg.max_wait + 1e-9);
    if (act.obs) ENSURE(act.obs->has && isfinite(act.obs->pause) && act.obs->pause >= 0);
    break;
  case HYP_ACT_CACHE_RELEASE:
    ENSURE(d->E.cfg.has_cache && d->E.cfg.has_cache_release && act.ticket && *act.ticket);
    break;
  case HYP_ACT_ON_REQUEST:
    ENSURE(d->E.cfg.has_on_request);
    check_out(d, act.out, 1);
    break;
  case HYP_ACT_ON_RESPONSE:
    ENSURE(d->E.cfg.has_on_response && act.in == &s->res);
    break;
  case HYP_ACT_DONE:
    if (c->token_only) ENSURE(hyp_token_usable(&d->E.token, d->now) || act.in == NULL);
    else ENSURE(s->saw_2xx && act.in == &s->res);
    break;
  case HYP_ACT_FAIL: {
    const hyp_error *e = act.error;
    ENSURE(e && e->kind);
    int known = 0;
    for (size_t i = 0; i < FZ_COUNT(KINDS); i++) known |= !strcmp(e->kind, KINDS[i]);
    ENSURE(known);
    ENSURE(memchr(e->message, 0, sizeof e->message) != NULL);
    /* the attempts of the request the error is about: the API's, or, when the token request
     * failed, that request's (this call's own, or those of the fetch it waited for) */
    if (c->token_failed)
      ENSURE(e->attempts >= 0 && (e->attempts == c->token_attempts || e->attempts == d->E.fetch_err.attempts));
    else
      ENSURE(e->attempts == c->attempts);
    ENSURE(isfinite(e->elapsed) && e->elapsed >= 0);
    ENSURE(e->method && e->url);
    break;
  }
  default:
    ENSURE(!"unknown action");
  }
  s->last = act.type;
  if (act.type == HYP_ACT_DONE || act.type == HYP_ACT_FAIL) {
    hyp_action again;
    hyp_input later = {d->now, NULL, NULL, NULL};
    ENSURE(hyp_call_step(&d->E, &s->c, &later, &again) != NULL);
    s->active = 0;
  }
}

/* The engine's configuration from the input. */
static void configure(drive *d) {
  fz *f = &d->f;
  hyp_engine_init(&d->E);
  hyp_config *c = &d->E.cfg;
  c->client_id = hyp_strdup("id");
  c->client_secret = hyp_strdup("s3cret:&=");
  c->base_url = hyp_strdup("https://api.example.test/v2");
  c->token_url = hyp_strdup("https://api.example.test/v2/auth/token");
  c->user_agent = hyp_strdup("hypatos-fuzz");
  unsigned flags = fz_u8(f);
  if (flags & 1) c->scope = hyp_strdup("users.read documents.write");
  c->has_cache = (flags >> 1) & 1;
  c->has_cache_release = c->has_cache && (flags & 0x80);
  c->has_store = fz_u8(f) & 1;
  c->has_on_request = (flags >> 2) & 1;
  c->has_on_response = (flags >> 3) & 1;
  c->throttle = (flags >> 4) & 1;
  d->honest = !((flags >> 5) & 1);
  c->timeout = number(f);
  c->connect_timeout = number(f);
  c->token_timeout = number(f) + 0.001;
  c->deadline = (flags & 0x40) ? number(f) : 0;
  c->max_retries = (int)fz_pick(f, 6);
  c->backoff_base = number(f) + 0.001;
  c->backoff_cap = number(f) + 0.001;
  c->max_wait = number(f);
  c->max_body_size = (size_t)fz_u16(f) << 4;
  d->E.cache_key = hyp_strdup("key");
  d->now = STARTS[fz_pick(f, FZ_COUNT(STARTS))];
  d->calls_left = 1 + (int)fz_pick(f, 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static drive d;
  memset(&d, 0, sizeof d);
  d.f.p = data;
  d.f.n = size;
  configure(&d);
  int two = fz_u8(&d.f) & 1;
  start(&d, &d.s[0], 1);
  d.calls_left--;
  if (two) start(&d, &d.s[1], 1);
  int started[2] = {1, two};
  int total = 0;
  while (d.s[0].active || d.s[1].active) {
    slot *s = &d.s[d.s[1].active && (!d.s[0].active || (fz_u8(&d.f) & 1))];
    step(&d, s);
    total++;
    /* with an honest clock, one call alone ends within the bound */
    if (d.honest && !two) ENSURE(s->steps < MAX_STEPS);
    if (total > 4 * MAX_STEPS) break;
    if (!s->active && s == &d.s[0] && d.calls_left > 0) {
      d.calls_left--;
      start(&d, s, 0);
    }
  }
  for (int i = 0; i < 2; i++) {
    if (started[i]) hyp_call_free(&d.E, &d.s[i].c);
    hyp_result_free(&d.s[i].res);
  }
  hyp_engine_free(&d.E);
  return 0;
}
