/*
 * engine/engine.h — the per-call state machine, sans I/O (design.md §1).
 *
 * A driver asks the engine "what next?" with hyp_call_step() and performs
 * the action it gets, then steps again with what came of it:
 *
 *   SEND         perform act->out; step again with the result
 *   SLEEP        sleep act->seconds + act->jitter × U[0,1) (the driver draws U)
 *   CACHE_GET    ask the token cache for E->cache_key (E->token.refused, if
 *                any, is a token the API refused); step again with its answer
 *                (hyp_cached: a token, a ticket, a wait or a denial), or NULL
 *                for a plain miss (a failing cache is a miss)
 *   CACHE_SET    offer E->token to the cache, with act->ticket if the call
 *                holds one; step again
 *   ACQUIRE      ask the shared store for a slot before a request goes out
 *                (act->obs: what the latest answers said of the quota, to
 *                tell it; act->seconds: the longest wait this call accepts);
 *                step again with its grant (hyp_grant: go, or wait; NULL or
 *                failed when the store could not be asked: local pacing)
 *   CACHE_RELEASE  the call got a ticket and will not store a token with it:
 *                hand act->ticket back, with act->error when its fetch failed
 *                for good (so the cache can remember a refusal); step again
 *   ON_REQUEST   run the client's on_request hook for act->out; step again
 *   ON_RESPONSE  run on_response for act->out and act->in; step again (the
 *                result must stay valid until then)
 *   DONE         act->in is the 2xx answer (NULL for a token-only call)
 *   FAIL         act->error says why
 *
 * The engine calls no user code, reads no clock, draws no random number and
 * does no I/O: time comes in with every step, randomness is applied by the
 * driver to SLEEP, callbacks are actions. So the same policy runs under
 * libcurl, a libcurl multi handle and nginx cosockets (where user code may
 * yield), and a test can drive it with scripted results and a fake clock.
 *
 * Policy (design.md §3): a usable token is found (current, cache) or fetched,
 * one fetch at a time per engine; a 401 drops that token and replays (once,
 * or up to 3 times while the refused token came from a cache); 429, 500, 502,
 * 503, 504 and transient transport failures are retried with full-jitter
 * backoff (a 429 waits Retry-After or the quota reset, a 5xx Retry-After or
 * the backoff); a request that is not idempotent is re-sent only when it
 * certainly did not reach the server or was refused with 429; a wait above
 * max_wait fails at once; a deadline bounds the whole call; pacing spreads
 * the remaining quota over the window. With a shared store (cfg.has_store)
 * every request asks it for a slot first (ACQUIRE) and tells it what the
 * answers said; when it cannot be asked, a breaker keeps it out of the way
 * for HYP_STORE_BREAK s and the client paces alone with its share of the
 * quota.
 */
#ifndef HYP_ENGINE_ENGINE_H
#define HYP_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ratelimit.h"
#include "token.h"
#include "util.h"

enum { HYP_BODY_NONE = 0, HYP_BODY_MEMORY, HYP_BODY_FILE };

/* The shortest SLEEP the engine asks for (seconds). Every driver can sleep
 * this long (nginx sleeps in whole milliseconds: a shorter ngx.sleep is
 * ngx.sleep(0), which only yields and leaves ngx.now() where it was), so a
 * wait always lets the clock move and a call always makes progress. */
#define HYP_MIN_WAIT 0.001

/* One call as the user asked for it, checked and normalised by a binding. */
typedef struct hyp_request {
  char method[16];
  hyp_buf url;             /* base URL + encoded path + query */
  hyp_buf headers;         /* "Name: value\0" lines from the caller (incl. Content-Type) */
  int nheaders;
  int has_accept;
  int body_kind;
  const char *body;        /* HYP_BODY_MEMORY: bytes owned by the binding, valid for the call */
  size_t body_len;
  hyp_buf json;            /* storage when the body came from the json option */
  char *body_path;         /* HYP_BODY_FILE */
  int64_t body_size;
  char *output_path;       /* stream a 2xx body to this file */
  int raw;                 /* return the body as bytes whatever its type */
  int idempotent;
  int max_retries;         /* -1: client default */
  double timeout, deadline;/* < 0: client default */
  int has_progress;        /* the binding reports transfer progress */
} hyp_request;

/* Frees what a binding allocated into r (safe on a partly built request). */
void hyp_request_free(hyp_request *r);

/* What a driver must send for one attempt. */
typedef struct hyp_outgoing {
  const char *method;
  const char *url;
  const hyp_buf *headers;  /* "Name: value\0" lines */
  int nheaders;
  int body_kind;
  const char *body;
  size_t body_len;
  const char *body_path;
  int64_t body_size;
  const char *output_path; /* NULL: keep the body in memory */
  double timeout;          /* this attempt; 0 = none */
  double connect_timeout;
  double deadline;         /* seconds left of the call's deadline: a hard bound on the
                              whole attempt, streamed or not; 0 = none */
  size_t max_body;         /* an answer held in memory (decompressed) longer than this
                              fails the attempt (HYP_F_TOO_LARGE); 0 = none */
  int stream;              /* a file moves: timeout is a stall limit */
  int fresh;               /* not idempotent: use a new connection, no silent resend */
  int is_token;            /* the token request (never logged with its body) */
} hyp_outgoing;

/* Why an attempt got no HTTP answer: the engine's own classes, onto which
 * every transport maps its errors. */
enum {
  HYP_F_NONE = 0,          /* an HTTP answer */
  HYP_F_RESOLVE,           /* DNS (or the proxy's name): nothing sent */
  HYP_F_CONNECT,           /* TCP connect: nothing sent */
  HYP_F_TLS,               /* TLS handshake: nothing sent */
  HYP_F_TLS_VERIFY,        /* the server's certificate did not verify: not retried */
  HYP_F_TIMEOUT,
  HYP_F_SEND,
  HYP_F_RECV,
  HYP_F_CLOSED,            /* the connection closed before an answer */
  HYP_F_PARTIAL,           /* the answer was cut short */
  HYP_F_TOO_LARGE,         /* over max_body: not retried */
  HYP_F_IO,                /* a local file could not be read or written: not retried */
  HYP_F_OTHER              /* anything else: not retried */
};

/* What came back from one attempt. */
typedef struct hyp_result {
  int failure;             /* HYP_F_*: HYP_F_NONE when there is an HTTP answer */
  int code;                /* the transport's own code (libcurl's), for err.code; -1 none */
  int sent;                /* some request bytes left this process */
  const char *message;     /* failure text */
  long status;             /* the answer's status; with a failure, the status line that had
                              arrived before it (0: none) */
  hyp_buf headers;         /* "name\0value\0", lower-case names (with a failure: those that
                              had arrived) */
  hyp_buf body;            /* in-memory body (empty when written to a file) */
  int body_in_file;
  double elapsed;          /* seconds this attempt took, when the driver knows */
  char msgbuf[512];        /* storage for message */
} hyp_result;

void hyp_result_reset(hyp_result *res);  /* empty, buffers kept */
void hyp_result_free(hyp_result *res);

/* What a failed call may have done at the server (err.outcome), from the
 * most telling of its API attempts: nothing reached it; it answered with an
 * error status; the request may have been received, no status came back; a
 * 2xx status arrived and only the rest of the answer was lost. */
enum { HYP_OUT_NOT_SENT = 0, HYP_OUT_REFUSED, HYP_OUT_UNKNOWN, HYP_OUT_DONE };

/* Why a call failed, as plain values (a binding turns it into its error value). */
typedef struct hyp_error {
  const char *kind;        /* "http", "rate_limited", "auth", "network", "timeout",
                              "decode", "io" */
  long status;             /* 0 when none */
  int retryable;
  double retry_after;      /* < 0 when none */
  int code;                /* the transport's code, -1 when none */
  int attempts;            /* the API attempts; the token request's when the error is about it */
  double elapsed;          /* seconds from the start of the call to its failure */
  const char *method, *url;
  const hyp_result *answer;/* the HTTP answer the error is about, or NULL: its body's
                              title/detail complete the message */
  int keep_body;           /* the answer's body may go into the error */
  const char *outcome;     /* "not_sent", "refused", "unknown", "done" (HYP_OUT_*) */
  char message[480];       /* the message, or its prefix when there is an answer */
} hyp_error;

#define HYP_STORE_BREAK 2.0 /* seconds the shared store is left alone after a failure */

/* What the shared store is told with the next ACQUIRE: the latest answer's
 * quota (its headers) and a pause the whole fleet must keep (a 429, a
 * Retry-After). Times are relative (the store keeps its own clock). */
typedef struct hyp_store_obs {
  int has;                 /* something to tell */
  double at;               /* when the answer came (the engine's clock) */
  double limit, window, remaining, reset; /* as hyp_rate_obs: -1 absent */
  double pause;            /* > 0: the fleet waits this long from `at` */
} hyp_store_obs;

/* The shared store's answer to ACQUIRE. */
typedef struct hyp_grant {
  int failed;              /* the store could not be asked (down, slow): pace locally */
  double wait;             /* seconds to wait; 0 = go now */
  int reserved;            /* the slot after the wait is this call's: send without asking again */
  int fleet;               /* clients sharing the quota lately (>= 1), 0 unknown */
} hyp_grant;

/* Client-wide state the engine keeps between calls. */
typedef struct hyp_engine {
  hyp_config cfg;
  hyp_token token;
  hyp_rate rate;
  int fetching;            /* a call is fetching the token (its request is out, or it
                              waits to retry it): the others wait for its outcome */
  double fetch_started;    /* when its current (or next) attempt started */
  unsigned fetch_gen;      /* fetches started so far */
  unsigned failed_gen;     /* the fetch that failed last (0: none), and how: calls that */
  hyp_error fetch_err;     /* waited for it fail the same way instead of fetching again */
  hyp_result fetch_answer; /* (a copy of the answer the error is about) */
  char *cache_key;         /* the token cache's key */
  int requests;            /* API attempts sent (stats) */
  int token_requests;      /* token attempts sent (stats) */
  /* the shared store (cfg.has_store) */
  hyp_store_obs obs;       /* to tell it with the next ACQUIRE */
  double store_down_until; /* breaker: not asked before this time */
  int store_fallback;      /* the store failed last time: the client paces alone */
  int fleet;               /* clients sharing the quota, as the store last said (0 unknown) */
  long acquires, store_waits, store_failures; /* stats */
  double store_wait_total; /* seconds the store asked calls to wait (stats) */
} hyp_engine;

enum {
  HYP_ACT_SEND = 1,
  HYP_ACT_SLEEP,
  HYP_ACT_DONE,
  HYP_ACT_FAIL,
  HYP_ACT_CACHE_GET,
  HYP_ACT_CACHE_SET,
  HYP_ACT_ON_REQUEST,
  HYP_ACT_ON_RESPONSE,
  HYP_ACT_CACHE_RELEASE,
  HYP_ACT_ACQUIRE
};

#define HYP_TICKET_MAX 128 /* longest ticket a token cache may hand out (bytes) */

typedef struct hyp_action {
  int type;
  double seconds;          /* SLEEP: at least this long…; ACQUIRE: the longest wait accepted */
  double jitter;           /* …plus jitter × U[0,1) */
  const hyp_outgoing *out; /* SEND, ON_REQUEST, ON_RESPONSE */
  const hyp_result *in;    /* ON_RESPONSE, DONE */
  const hyp_error *error;  /* FAIL; CACHE_RELEASE (NULL: no failure) */
  const char *ticket;      /* CACHE_SET, CACHE_RELEASE: the cache's ticket, or NULL */
  const hyp_store_obs *obs;/* ACQUIRE: what to tell the store, or NULL */
} hyp_action;

/* What the driver brings to a step. */
typedef struct hyp_input {
  double now;              /* wall-clock seconds */
  const hyp_result *result;/* after SEND */
  const hyp_cached *cached;/* after CACHE_GET: the token, or NULL for a miss */
  const hyp_grant *grant;  /* after ACQUIRE: the store's answer, or NULL (failed) */
} hyp_input;

/* One call in progress. */
typedef struct hyp_call {
  hyp_request req;
  int phase;
  int token_only;          /* stops once a token is usable (client:token()) */
  int attempts;            /* API attempts sent */
  int token_attempts;      /* token attempts in the current fetch */
  int retries;             /* retries used */
  int replayed;            /* 401 replays used */
  unsigned fetched_gen;    /* token generation this call's own token request installed */
  int owns_fetch;          /* this call's token fetch is the one out */
  unsigned fetch_gen;      /* the fetch this call started or waited for */
  int token_failed;        /* the failure being reported is the token request's */
  int deadline_hit;        /* the failure being reported is this call's deadline */
  int in_flight;           /* an attempt of this call is counted in E->rate.inflight */
  int outcome;             /* HYP_OUT_*: the most telling outcome of its API attempts */
  int cache_answered;      /* the cache was asked in this round */
  double cache_wait;       /* the cache asked to wait this long before asking again */
  double cache_waiting;    /* since when it keeps asking (0: not waiting) */
  int has_ticket;          /* the cache made this call the fetcher: */
  char ticket[HYP_TICKET_MAX + 1]; /* its ticket, handed back with CACHE_SET/RELEASE */
  int release_fails;       /* a CACHE_RELEASE is out; c->err is to be reported next */
  int granted;             /* the shared store granted the next request (send it)… */
  double grant_until;      /* …if it goes by then */
  unsigned sent_gen;       /* token generation the last attempt carried */
  double started, deadline_at;
  double now;              /* the clock of the latest step */
  int max_retries;
  hyp_outgoing out;
  const hyp_result *pending; /* the answer an ON_RESPONSE action is about */
  hyp_buf lines;           /* header lines of the current attempt */
  hyp_buf tokbody;         /* token request body */
  hyp_error err;           /* why the call failed */
  int last_code;           /* last failure, for a deadline error */
  long last_status;
  char last_msg[256];
} hyp_call;

void hyp_engine_init(hyp_engine *E);    /* zeroed state; the binding fills E->cfg */
void hyp_engine_free(hyp_engine *E);    /* wipes the secrets */

void hyp_call_init(hyp_call *c, int token_only);
/* Makes c ready for another call, keeping its buffers (big ones are freed)
 * and giving up the token fetch if it had it. */
void hyp_call_reset(hyp_engine *E, hyp_call *c, int token_only);
/* Advances the call (see the file banner). Returns NULL, or a static text
 * when the driver misused it (a step after the end, no result after SEND):
 * act is then untouched and the binding raises. */
const char *hyp_call_step(hyp_engine *E, hyp_call *c, const hyp_input *in, hyp_action *act);
/* Releases a call; gives up the token fetch if this call had it. */
void hyp_call_free(hyp_engine *E, hyp_call *c);

#endif
