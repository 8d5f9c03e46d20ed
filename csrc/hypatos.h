/*
 * hypatos.h — internal interfaces shared by the C files of hypatos.core.
 *
 * The module is split by concern (design.md §1):
 *   util.c       buffers, time, percent-encoding, base64, random numbers
 *   errors.c     the one constructor of structured error values
 *   json.c       JSON encoding (exact numbers, empty arrays) and decoding via lua-cjson
 *   options.c    the client options table: checks, defaults, environment fallbacks
 *   request.c    one call's options: headers, body, … checked before sending
 *   url.c        one call's URL: path parameters percent-encoded, query
 *   token.c      OAuth 2.0 client-credentials token: cache, request, response, refresh
 *   ratelimit.c  rate-limit headers, 429 waits, proactive pacing
 *   engine.c     the per-call state machine (no I/O): what to do next
 *   scrub.c      secrets replaced by "[redacted]" in errors and hook data
 *   answer.c     an attempt's answer as Lua values: value/meta, HTTP errors, hook data
 *   transport.c  the libcurl driver for one attempt
 *   client.c     the hypatos.Client userdata and its blocking driver loop
 *   call.c       the hypatos.Call userdata: the engine for drivers written in Lua
 *   meta.c       the meta table of a successful call (headers built lazily)
 *   core.c       luaopen_hypatos_core
 * Only luaopen_hypatos_core is exported; every other symbol is static or hyp_*.
 */
#ifndef HYPATOS_H
#define HYPATOS_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#include "compat.h"

#define HYP_VERSION "0.1.0"

#define HYP_CLIENT_MT "hypatos.Client"
#define HYP_CALL_MT "hypatos.Call"
#define HYP_ERROR_MT "hypatos.Error"
#define HYP_TOKEN_MT "hypatos.Token"
#define HYP_ARRAY_MT "hypatos.array"

#if defined(__GNUC__)
#define HYP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HYP_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------ util.c */

/* A growable byte buffer; data is always NUL-terminated when non-NULL. */
typedef struct hyp_buf {
  char *data;
  size_t len, cap;
} hyp_buf;

int hyp_buf_add(hyp_buf *b, const void *p, size_t n);          /* 0 | -1 (ENOMEM) */
int hyp_buf_adds(hyp_buf *b, const char *s);
int hyp_buf_addc(hyp_buf *b, char c);
int hyp_buf_addf(hyp_buf *b, const char *fmt, ...) HYP_PRINTF(2, 3);
void hyp_buf_reset(hyp_buf *b);                                 /* len = 0, keeps memory */
void hyp_buf_free(hyp_buf *b);                                  /* frees (no wipe) */
void hyp_buf_wipe(hyp_buf *b);                                  /* wipes, then frees */

char *hyp_strdup(const char *s);                                /* NULL on ENOMEM or NULL s */
void hyp_wipe(void *p, size_t n);                               /* memset that is not elided */
void hyp_free_secret(char **s);                                 /* wipe + free + NULL */

double hyp_now(void);                                           /* wall clock, seconds */
void hyp_sleep(double seconds);                                 /* restarts on EINTR */
int hyp_sleep_until(double seconds, int (*stop)(void *), void *ud); /* 1: stopped early */
int hyp_interrupted(lua_State *L);                              /* SIGINT in lua/luajit */

/* Percent-encoding. hyp_pct_encode keeps RFC 3986 unreserved characters;
 * hyp_form_encode is application/x-www-form-urlencoded (space as '+'). */
int hyp_pct_encode(hyp_buf *b, const char *s, size_t n);
int hyp_form_encode(hyp_buf *b, const char *s, size_t n);
int hyp_base64(hyp_buf *b, const unsigned char *p, size_t n);

/* Random numbers in [0, 1) from a splitmix64 state. */
uint64_t hyp_seed(void);
double hyp_random(uint64_t *state);

/* Headers as received: "name\0value\0" pairs, names lower-cased. */
const char *hyp_header_get(const hyp_buf *h, const char *name);  /* first value or NULL */
int hyp_header_add(hyp_buf *h, const char *name, size_t nlen, const char *value, size_t vlen);
void hyp_headers_push(lua_State *L, const hyp_buf *h);           /* → {name = value} */
/* A string with its length (keys may hold NUL). */
typedef struct hyp_str {
  const char *s;
  size_t len;
} hyp_str;
/* Pushes the string keys of the table at idx as a sorted array; returns their number. */
size_t hyp_sorted_keys(lua_State *L, int idx);
/* Request header lines "Name: value\0" → {Name = value}; skip_auth drops Authorization. */
void hyp_lines_push(lua_State *L, const hyp_buf *lines, int n, int skip_auth);

/* ---------------------------------------------------------------- errors.c */

/* Everything an error value can carry; zero means "absent" for numbers. */
typedef struct hyp_errinfo {
  const char *kind;        /* "http", "rate_limited", "auth", "network", "timeout",
                              "decode", "io", "invalid" */
  long status;             /* HTTP status, 0 when none */
  const char *message;     /* one readable line, required */
  const char *title, *detail; /* from an API error body, may be NULL */
  int retryable;
  double retry_after;      /* seconds; < 0 when none */
  int attempts;
  const char *method, *url;
  int code;                /* libcurl code; < 0 when none */
  int body_idx;            /* stack index of the body value (table/string), 0 = none */
  int headers_idx;         /* stack index of a headers table, 0 = none */
  int detail_idx;          /* stack index of a non-string detail (422 list), 0 = none */
} hyp_errinfo;

void hyp_errinfo_init(hyp_errinfo *e, const char *kind, const char *message);
int hyp_misuse(lua_State *L, const char *who, const char *fmt, ...) HYP_PRINTF(3, 4);
void hyp_push_error(lua_State *L, const hyp_errinfo *e);
int hyp_errors_open(lua_State *L);                              /* metatable */

/* ------------------------------------------------------------------ json.c */

/* Encodes the Lua value at idx as JSON into b. Raises on values JSON cannot
 * hold (functions, NaN, sparse arrays, mixed keys, cycles). */
void hyp_json_encode(lua_State *L, int idx, hyp_buf *b);
/* Decodes s; pushes the value and returns 1, or pushes an error message
 * and returns 0. Integral numbers become integers on Lua 5.3+. */
int hyp_json_decode(lua_State *L, const char *s, size_t n);
int hyp_json_open(lua_State *L);                                /* needs cjson */
int hyp_is_json_type(const char *content_type);

/* --------------------------------------------------------------- options.c */

/* Ranges checked before any number is cast (client and per-call options). */
#define HYP_MAX_SECONDS 604800.0 /* durations: 7 days (fits libcurl's long milliseconds) */
#define HYP_MAX_RETRIES 100

typedef struct hyp_options {
  char *client_id, *client_secret;
  char *base_url;          /* no trailing slash */
  char *token_url;
  char *scope;             /* space-separated or NULL */
  char *user_agent;        /* the full User-Agent value */
  char *ca_file, *proxy;
  double timeout, connect_timeout, token_timeout;
  double deadline;         /* whole call; 0 = none */
  int max_retries;
  double backoff_base, backoff_cap, max_wait;
  int throttle;
  size_t max_body_size;    /* bytes of an answer held in memory (after decompression) */
  /* Lua values (token_cache, hooks, random) live in the client's user value
   * table under these keys; the flags say which are present. */
  int has_cache, has_on_request, has_on_response, has_random;
} hyp_options;

/* Reads and checks the options table at idx (raises on misuse naming the key);
 * Lua-valued options are stored into the table at uv_idx. */
void hyp_options_parse(lua_State *L, int idx, int uv_idx, hyp_options *o);
void hyp_options_free(hyp_options *o);

/* Checks that url uses https, or http to a loopback host. Returns NULL when
 * fine, else a static reason. */
const char *hyp_check_url(const char *url);
/* True when the host of an http(s) URL is a loopback address (parsed, not
 * matched by prefix): such traffic never goes through a proxy. */
int hyp_loopback_url(const char *url);

/* --------------------------------------------------------------- request.c */

enum { HYP_BODY_NONE = 0, HYP_BODY_MEMORY, HYP_BODY_FILE };

/* One call as the user asked for it, checked and normalised. */
typedef struct hyp_request {
  char method[16];
  hyp_buf url;             /* base URL + encoded path + query */
  hyp_buf headers;         /* "Name: value\0" lines from the caller (incl. Content-Type) */
  int nheaders;
  int has_accept;
  int body_kind;
  const char *body;        /* HYP_BODY_MEMORY: bytes owned by a Lua string the caller pins */
  size_t body_len;
  hyp_buf json;            /* storage when the body came from the json option */
  char *body_path;         /* HYP_BODY_FILE */
  int64_t body_size;
  char *output_path;       /* stream a 2xx body to this file */
  int raw;                 /* return the body as bytes whatever its type */
  int idempotent;
  int max_retries;         /* -1: client default */
  double timeout, deadline;/* < 0: client default */
  int has_progress;        /* a progress function is pinned by the caller */
} hyp_request;

/* Reads method, path and the per-call options table (at opts_idx, may be 0).
 * Misuse raises. Bad data found at run time (CR/LF in a header value, an empty
 * path parameter, an unreadable body file) returns -1 and fills msg. */
int hyp_request_prepare(lua_State *L, const hyp_options *o, const char *method,
                        const char *path, int opts_idx, hyp_request *r,
                        char *msg, size_t msglen);
void hyp_request_free(hyp_request *r);

/* url.c: appends path (placeholders from the params table at params, 0 = none)
 * or the query table at idx to url. hyp_url_path returns -1 with msg for bad
 * data; both raise on misuse. */
int hyp_url_path(lua_State *L, hyp_buf *url, const char *path, int params, char *msg,
                 size_t msglen);
void hyp_url_query(lua_State *L, hyp_buf *url, int idx);

/* ------------------------------------------------------- transport interface */

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
                              fails the attempt (CURLE_FILESIZE_EXCEEDED); 0 = none */
  int stream;              /* a file moves: timeout is a stall limit */
  int fresh;               /* not idempotent: use a new connection, no silent resend */
  int is_token;            /* the token request (never logged with its body) */
} hyp_outgoing;

/* What came back from one attempt. */
typedef struct hyp_result {
  int failed;              /* no HTTP answer: a transport failure */
  int code;                /* libcurl code (0 when none) */
  int sent;                /* some request bytes left this process */
  const char *message;     /* transport failure text */
  int io;                  /* the failure was local file I/O */
  long status;
  hyp_buf headers;         /* "name\0value\0", lower-case names */
  hyp_buf body;            /* in-memory body (empty when written to a file) */
  int body_in_file;
  double elapsed;          /* seconds this attempt took, when the driver knows */
  char msgbuf[512];        /* storage for message */
} hyp_result;

/* ------------------------------------------------------------- ratelimit.c */

typedef struct hyp_rate {
  int known;               /* any rate-limit header seen */
  long limit;              /* -1 unknown */
  long remaining;          /* -1 unknown */
  double window;           /* policy window in seconds, 0 unknown */
  double reset_at;         /* wall clock; 0 unknown */
  char policy[64];
  double last_send;        /* when the last request was released */
} hyp_rate;

void hyp_rate_init(hyp_rate *r);
void hyp_rate_update(hyp_rate *r, const hyp_buf *headers, double now);
double hyp_rate_delay(const hyp_rate *r, double now);           /* pacing wait, >= 0 */
double hyp_retry_after(const hyp_buf *headers, double now);      /* Retry-After, < 0 none */
double hyp_rate_reset(const hyp_buf *headers, double now,       /* quota reset, < 0 none */
                      double window);
void hyp_rate_push(lua_State *L, const hyp_rate *r, double now); /* table or nil */

/* ----------------------------------------------------------------- token.c */

typedef struct hyp_token {
  char *access_token;      /* NULL: none */
  double expires_at;       /* wall clock */
  double lifetime;         /* expires_in as received */
  char *scope;
  unsigned gen;            /* bumped for every new token */
  char *refused;           /* last token the API refused (not taken from the cache) */
} hyp_token;

/* ---------------------------------------------------------------- engine.c */

/* Client-wide state the engine keeps between calls. */
typedef struct hyp_engine {
  hyp_options opt;
  hyp_token token;
  hyp_rate rate;
  int fetching;            /* a token request is out */
  double fetch_started;
  uint64_t rng;
  char *cache_key;         /* key for the pluggable token cache */
  int requests;            /* API attempts sent (stats) */
  int token_requests;      /* token attempts sent (stats) */
} hyp_engine;

enum { HYP_ACT_SEND = 1, HYP_ACT_SLEEP, HYP_ACT_DONE, HYP_ACT_FAIL };

typedef struct hyp_action {
  int type;
  double seconds;          /* HYP_ACT_SLEEP */
  const hyp_outgoing *out; /* HYP_ACT_SEND */
} hyp_action;

/* One call in progress. */
typedef struct hyp_call {
  hyp_request req;
  int phase;
  int attempts;            /* API attempts sent */
  int token_attempts;      /* token attempts in the current fetch */
  int retries;             /* retries used */
  int replayed;            /* 401 replays used */
  unsigned fetched_gen;    /* token generation this call's own token request installed */
  int owns_fetch;          /* this call's token request is the one out */
  int token_failed;        /* the failure being reported is the token request's */
  int token_only;          /* stops once a token is usable (client:token()) */
  unsigned sent_gen;       /* token generation the last attempt carried */
  double started, deadline_at;
  int max_retries;
  hyp_outgoing out;
  hyp_buf lines;           /* header lines of the current attempt */
  hyp_buf tokbody;         /* token request body */
  int last_code;           /* last failure, for a deadline error */
  long last_status;
  char last_msg[256];
} hyp_call;

/* Where the engine finds the client's Lua values: the client userdata index. */
void hyp_engine_init(hyp_engine *E);
void hyp_engine_free(hyp_engine *E);

void hyp_call_init(hyp_call *c);
/* Advances the call. in is the result of the previous SEND (NULL otherwise).
 * On DONE pushes value and meta; on FAIL pushes the error. May raise only for
 * misuse in user callbacks (token cache, random). */
void hyp_call_step(lua_State *L, int client_idx, hyp_engine *E, hyp_call *c,
                   double now, const hyp_result *in, hyp_action *act);
void hyp_call_free(hyp_engine *E, hyp_call *c);

/* scrub.c: replaces every secret of E (client secret, Basic credentials,
 * current and refused token) by "[redacted]" in the string or table (keys,
 * values, nested tables) at idx; a string is replaced on the stack. */
void hyp_scrub(lua_State *L, int idx, const hyp_engine *E);

/* answer.c, used by the engine */
void hyp_answer_error(lua_State *L, const hyp_call *c, const hyp_result *in, const char *kind,
                      int retryable, double retry_after, const char *prefix, int keep_body);
int hyp_answer_value(lua_State *L, const hyp_engine *E, const hyp_call *c, const hyp_result *in,
                     double now);
void hyp_hook_request(lua_State *L, int client_idx, const hyp_engine *E, const hyp_call *c);
void hyp_hook_response(lua_State *L, int client_idx, const hyp_engine *E, const hyp_call *c,
                       const hyp_result *in);

/* token.c, used by the engine */
int hyp_token_usable(const hyp_engine *E, double now);
int hyp_token_from_cache(lua_State *L, int client_idx, hyp_engine *E, double now);
void hyp_token_request(hyp_engine *E, hyp_call *c);
/* Reads a token response (2xx). Returns 0 on success, else -1 with msg. */
int hyp_token_accept(lua_State *L, int client_idx, hyp_engine *E, const hyp_result *res,
                     double now, char *msg, size_t msglen);
void hyp_token_refused(hyp_engine *E, unsigned gen);
void hyp_token_push(lua_State *L, const hyp_engine *E, double now);
void hyp_token_free(hyp_token *t);

/* ------------------------------------------------------------- transport.c */

typedef struct hyp_transport hyp_transport;

/* A progress callback: return non-zero to abort the transfer. */
typedef int (*hyp_progress_fn)(void *ud, int64_t dltotal, int64_t dlnow,
                               int64_t ultotal, int64_t ulnow);

hyp_transport *hyp_transport_new(void);
void hyp_transport_free(hyp_transport *t);
/* Performs one attempt. res must be zeroed/reset by the caller; it is filled
 * either with an HTTP answer or with a transport failure. */
void hyp_transport_perform(hyp_transport *t, const hyp_outgoing *o, const hyp_options *opt,
                           hyp_progress_fn progress, void *progress_ud, hyp_result *res);
/* The same attempt in two halves, for a libcurl multi handle: begin sets the
 * easy handle up (0), or fills res with a failure before anything is sent
 * (-1); once libcurl reports the transfer done with code, end fills res. o
 * must stay valid in between. */
int hyp_transport_begin(hyp_transport *t, const hyp_outgoing *o, const hyp_options *opt,
                        hyp_progress_fn progress, void *progress_ud, hyp_result *res);
void hyp_transport_end(hyp_transport *t, int code, hyp_result *res);
void *hyp_transport_handle(hyp_transport *t);                   /* the CURL easy handle */
const char *hyp_curl_version(void);
void hyp_result_free(hyp_result *res);

/* ------------------------------------------------------------------ meta.c */

void hyp_meta_push(lua_State *L, const hyp_result *in, const hyp_rate *rate, int attempts,
                   double elapsed, double now);
int hyp_meta_open(lua_State *L);

/* ------------------------------------------------------------------ call.c */

struct hyp_client;

/* One call's state: the hypatos.Call userdata, or embedded in a client for
 * blocking calls (reused from call to call, buffers kept). */
typedef struct hyp_calludata {
  hyp_call c;
  hyp_result res;          /* the last attempt's answer (buffers reused) */
  hyp_engine *E;
  struct hyp_client *client;
  int token_only;          /* client:token(): stops once a token is usable */
  int closed;
  int sending;             /* the last step asked to send: c.out is valid */
  int in_multi;            /* a hypatos.Multi is performing c.out */
} hyp_calludata;

int hyp_call_open(lua_State *L);
int hyp_call_new(lua_State *L);                                 /* client:prepare() */
int hyp_call_new_token(lua_State *L);                           /* client:prepare_token() */
int hyp_multi_open(lua_State *L);                               /* multi.c: core.multi() */
/* Prepares cu for a call of the client at client_idx. On bad data (see
 * hyp_request_prepare) pushes an error value and returns -1. */
int hyp_call_setup(lua_State *L, int client_idx, hyp_calludata *cu, const char *method,
                   const char *path, int opts_idx, int token_only);
/* Makes cu ready for the next call, keeping its buffers (big ones are freed). */
void hyp_call_recycle(hyp_calludata *cu);

/* ---------------------------------------------------------------- client.c */

typedef struct hyp_client {
  hyp_engine E;
  hyp_transport *T;        /* created on first use */
  hyp_calludata call;      /* the state of blocking calls */
  int busy;                /* steps of this client's calls running (blocking or prepared):
                              close() raises meanwhile */
  int running;             /* the blocking call (its state is cl->call) is running */
  int closed;
} hyp_client;

hyp_client *hyp_client_check(lua_State *L, int idx);            /* raises when closed */
int hyp_client_open(lua_State *L);                              /* metatable; pushes new() */
/* Pushes the client's user-value field k (nil if absent). */
int hyp_client_getuv(lua_State *L, int client_idx, const char *k);

#endif
