/*
 * binding/binding.h — the Lua binding of hypatos.core: the only layer that
 * includes lua.h (design.md §1). It turns Lua options and requests into the
 * engine's plain values, performs the engine's actions for blocking calls
 * (libcurl), hands them to drivers written in Lua (hypatos.Call), and turns
 * answers and errors into Lua values.
 *
 *   os.c          clock, sleep, SIGINT, a random seed, the umask (the I/O the engine leaves out)
 *   tables.c      header lists and sorted keys as Lua tables
 *   errors.c      the one constructor of structured error values
 *   json.c        the JSON functions of the module (encode, decode, array, null)
 *   json_decode.c JSON decoding in one pass (integers, empty arrays, null)
 *   json_encode.c JSON encoding (exact numbers, empty arrays, sorted keys)
 *   options.c     hypatos.new() options → hyp_config (+ Lua values kept)
 *   request.c     one call's options → hyp_request; url.c its URL
 *   scrub.c       secrets replaced by "[redacted]" in errors and hook data
 *   input.c       Lua values into the engine's: results, a cache's answer, a grant
 *   answer.c      answers, errors, tokens, hook data, a store's observations as Lua values
 *   meta.c        the meta table of a successful call (lazy headers)
 *   httphead.c    core.http_head: an answer's head parsed for the cosocket transport
 *   keys.c        field names of the hot path, interned once (no lua_setfield per field)
 *   cosock.c      core.cosocket_stale: a pooled nginx connection looked at before reuse
 *   driver.c      the drivers' loop: step, perform (SEND with libcurl, SLEEP,
 *                 the callbacks: token cache, store, hooks), answer
 *   call.c        hypatos.Call: the engine for drivers written in Lua
 *   client.c      hypatos.Client: its methods run calls with driver.c
 *   multi.c       hypatos.Multi: many attempts at once (transport/multi.h)
 *   tmpfile.c     hypatos.TmpFile: a download's temporary file for Lua drivers
 *   redis.c       hypatos.Redis: a Redis connection for the shared store (transport/redis.h)
 *   core.c        luaopen_hypatos_core
 * Only luaopen_hypatos_core is exported; every other symbol is static or hyp_*.
 */
#ifndef HYP_BINDING_H
#define HYP_BINDING_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#include "compat.h"
#include "../engine/engine.h"
#include "../transport/curl.h"

#define HYP_VERSION "0.1.0"

#define HYP_CLIENT_MT "hypatos.Client"
#define HYP_CALL_MT "hypatos.Call"
#define HYP_MULTI_MT "hypatos.Multi"
#define HYP_ERROR_MT "hypatos.Error"
#define HYP_TOKEN_MT "hypatos.Token"
#define HYP_ARRAY_MT "hypatos.array"
#define HYP_HEADER_BLOCK_MT "hypatos.HeaderBlock"

/* -------------------------------------------------------------------- os.c */

double hyp_now(void);                                           /* wall clock, seconds */
void hyp_sleep(double seconds);                                 /* restarts on EINTR */
int hyp_sleep_until(double seconds, int (*stop)(void *), void *ud); /* 1: stopped early */
int hyp_interrupted(lua_State *L);                              /* SIGINT in lua/luajit */
void hyp_os_open(lua_State *L); /* notes the main thread (Lua 5.1), where SIGINT's hook goes */
int hyp_interrupt_error(lua_State *L); /* raises "hypatos: interrupted", the interpreter's hook taken */
uint64_t hyp_seed(void);                                        /* from /dev/urandom */
const char *hyp_wait_signal(void);                              /* "INT", "TERM", "HUP" */
int hyp_umask(void);                                            /* read, never set; -1: unknown */

/* ---------------------------------------------------------------- tables.c */

void hyp_headers_push(lua_State *L, const hyp_buf *h);           /* → {name = value} */
/* Request header lines "Name: value\0" → {Name = value}; skip_auth drops Authorization. */
void hyp_lines_push(lua_State *L, const hyp_buf *lines, int n, int skip_auth);
void hyp_lines_push_text(lua_State *L, const hyp_buf *lines, int n); /* "Name: value\r\n"… */
void hyp_text_lines_push(lua_State *L, int idx);                      /* that text → {Name = value} */
/* Pushes the string keys of the table at idx as a sorted array; returns their number. */
size_t hyp_sorted_keys(lua_State *L, int idx);

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
  double elapsed;          /* seconds the call took until it failed; < 0 when not known */
  const char *method, *url;
  const char *outcome;     /* "not_sent" (the default), "refused", "unknown", "done" */
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
int hyp_json_open(lua_State *L);                                /* json.c */
int hyp_is_json_type(const char *content_type);

/* --------------------------------------------------------------- options.c */

/* Reads and checks the options table at idx (raises on misuse naming the key)
 * into cfg; Lua-valued options (token cache, hooks, random) are stored into
 * the table at uv_idx under ".name" keys. *has_random says whether a random
 * function was given. */
void hyp_options_parse(lua_State *L, int idx, int uv_idx, hyp_config *cfg, int *has_random);

/* --------------------------------------------------------------- request.c */

/* The method or path argument at idx (what: "method" | "path"): a string without
 * NUL, which would cut it short (raises "hypatos.request: …" otherwise). */
const char *hyp_request_arg(lua_State *L, int idx, const char *what);
/* Reads method, path and the per-call options table (at opts_idx, may be 0).
 * Misuse raises. Bad data found at run time (CR/LF in a header value, an empty
 * path parameter, an unreadable body file) returns -1 (invalid) or -2 (io)
 * and fills msg. */
int hyp_request_prepare(lua_State *L, const hyp_config *cfg, const char *method,
                        const char *path, int opts_idx, hyp_request *r,
                        char *msg, size_t msglen);

/* url.c: appends path (placeholders from the params table at params, 0 = none)
 * or the query table at idx to url. hyp_url_path returns -1 with msg for bad
 * data; both raise on misuse. */
int hyp_url_path(lua_State *L, hyp_buf *url, const char *path, int params, char *msg,
                 size_t msglen);
/* The same with the parameters' values on the stack at args, args + 1, … (in
 * the order of the placeholders), for a compiled operation's call. */
int hyp_url_path_args(lua_State *L, hyp_buf *url, const char *path, int args, char *msg, size_t msglen);
void hyp_url_query(lua_State *L, hyp_buf *url, int idx);

/* ----------------------------------------------------------------- scrub.c */

/* Replaces every secret of E (client secret, Basic credentials, current and
 * refused token) by "[redacted]" in the string or table (keys, values, nested
 * tables) at idx; a string is replaced on the stack. */
void hyp_scrub(lua_State *L, int idx, const hyp_engine *E);

/* ------------------------------------------------------------------ keys.c */

/* The names keys.c keeps interned (its NAMES, in this order). */
enum hyp_key {
  HYP_K_TYPE = 1, HYP_K_METHOD, HYP_K_URL, HYP_K_HEADER_LINES, HYP_K_BODY, HYP_K_BODY_FILE,
  HYP_K_BODY_SIZE, HYP_K_OUTPUT, HYP_K_TIMEOUT, HYP_K_CONNECT_TIMEOUT, HYP_K_MAX_BODY_SIZE,
  HYP_K_DEADLINE, HYP_K_STREAM, HYP_K_FRESH, HYP_K_TOKEN_REQUEST, HYP_K_PROXY, HYP_K_VALUE,
  HYP_K_META, HYP_K_ERROR, HYP_K_STATUS, HYP_K_ATTEMPTS, HYP_K_ELAPSED, HYP_K_HEADERS,
  HYP_K_HEADER_BLOCK, HYP_K_BODY_IN_FILE, HYP_K_SEND, HYP_K_DONE, HYP_K_FAIL,
  HYP_K_SLEEP, HYP_K_SECONDS, HYP_K_COUNT
};
int hyp_keys_open(lua_State *L);
/* Pushes the array of interned names; returns its (absolute) index. */
int hyp_keys_push(lua_State *L);
/* Pushes name k (the array at keys). */
#define hyp_pushkey(L, keys, k) lua_rawgeti((L), (keys), (k))
/* t[k] = the value on the top (popped), t at index t: lua_setfield(L, t, name), raw. */
void hyp_setk(lua_State *L, int t, int keys, int k);
/* Pushes t[k] for the table at idx (raw), returns its type: lua_getfield, raw. */
int hyp_getk(lua_State *L, int idx, int keys, int k);

/* ------------------------------------------------------------------ meta.c */

void hyp_meta_push(lua_State *L, const hyp_result *in, const hyp_rate *rate, int attempts,
                   double elapsed, double now);
void hyp_rate_push(lua_State *L, const hyp_rate *r, double now); /* table or nil */
int hyp_meta_open(lua_State *L);
int hyp_httphead_open(lua_State *L);                            /* httphead.c: core.http_head() */
int hyp_cosock_open(lua_State *L); /* cosock.c: core.cosocket_peeks(), core.cosocket_stale() */
/* True when the value at idx is a header block made by core.http_head (data, len: its
 * bytes, "name\0value\0" for each field: names lower case and unique, as in
 * hyp_result.headers). */
int hyp_header_block(lua_State *L, int idx, const char **data, size_t *len);

/* ------------------------------------------------------------------ call.c */

struct hyp_client;

/* One call's state: the hypatos.Call userdata, or embedded in a client for
 * blocking calls (reused from call to call, buffers kept). */
typedef struct hyp_calludata {
  hyp_call c;
  hyp_result res;          /* the last attempt's answer (buffers reused) */
  hyp_engine *E;
  struct hyp_client *client;
  int closed;
  int sending;             /* the last step asked to send: c.out is valid */
  int in_multi;            /* a hypatos.Multi is performing c.out */
  int token_answer;        /* res holds a token answer the engine has yet to read */
  int acquiring;           /* the last step asked the shared store (ACQUIRE) */
} hyp_calludata;

int hyp_call_open(lua_State *L);
int hyp_call_new(lua_State *L);                                 /* client:prepare() */
int hyp_call_new_token(lua_State *L);                           /* client:prepare_token() */
int hyp_call_new_op(lua_State *L);                              /* client:prepare_op() */
int hyp_multi_open(lua_State *L);                               /* multi.c: core.multi() */
/* multi.c: starts the attempt of cu (its last action was SEND; the call
 * userdata at call_idx) in the multi at multi_idx, with the progress function
 * at progress_idx (0: none). Raises when the call is already in it. */
void hyp_multi_start(lua_State *L, int multi_idx, int call_idx, hyp_calludata *cu, int progress_idx);
/* multi:run's body (arguments: call, multi, now, progress): steps the call
 * like call:step and pushes "send" (started in the multi), "sleep", seconds,
 * "done", value, meta or "fail", err. */
int hyp_call_run(lua_State *L);
int hyp_tmpfile_open(lua_State *L);                             /* tmpfile.c: core.tmpfile() */
int hyp_redis_open(lua_State *L);                               /* redis.c: core.redis() */
/* Prepares cu for a call of the client at client_idx. On bad data (see
 * hyp_request_prepare) pushes an error value and returns -1. */
int hyp_call_setup(lua_State *L, int client_idx, hyp_calludata *cu, const char *method,
                   const char *path, int opts_idx, int token_only);
/* The same for a compiled operation (op.c): its path parameters at args,
 * args + 1, …, its body at body (0: none). */
struct hyp_op;
int hyp_call_setup_op(lua_State *L, int client_idx, hyp_calludata *cu, const struct hyp_op *op, int args, int body);

/* -------------------------------------------------------------------- op.c */

#define HYP_OP_MT "hypatos.Op"
enum { HYP_OP_NONE = 0, HYP_OP_JSON, HYP_OP_QUERY };

/* An operation of the operations table compiled once for Client:call: its
 * method, path, whether it is idempotent, its body (none, JSON, a query). */
typedef struct hyp_op {
  char method[16];
  int idempotent;
  int body;                /* HYP_OP_* */
  int nparams;             /* {name} placeholders in path */
  char path[256];
} hyp_op;

int hyp_op_open(lua_State *L);                                  /* metatable; core.op */
/* Whether the values from args on (path parameters, then the body) make a
 * call of op without options (else: the general path); *body = the body's
 * index (0: none). */
int hyp_op_args(lua_State *L, const hyp_op *op, int args, int *body);
/* Fills r for a call of op, with the path parameters at args, args + 1, …
 * and the body (a JSON table or a query table) at body (0: none). Misuse
 * raises; bad data returns -1 with msg, as hyp_request_prepare. */
int hyp_request_op(lua_State *L, const hyp_config *cfg, const hyp_op *op, int args, int body, hyp_request *r,
                   char *msg, size_t msglen);

/* ---------------------------------------------------------------- answer.c */

/* The outcome of a DONE action: pushes value and meta (returns 2), the token
 * table and nil for a token-only call (returns 2), or the decode error of a
 * body that should be JSON but is not (returns 1). */
int hyp_answer_done(lua_State *L, hyp_calludata *cu, const hyp_action *act, double now);
/* Pushes the error value of a FAIL action, its secrets scrubbed. */
void hyp_answer_fail(lua_State *L, hyp_calludata *cu, const hyp_error *e);
/* Pushes the info table of an ON_REQUEST/ON_RESPONSE action, scrubbed:
 * {method, url, attempt, token_request, headers (no Authorization)} and, for
 * a response, {status, headers, elapsed} or {error, code, elapsed}. */
void hyp_answer_hook_info(lua_State *L, const hyp_calludata *cu, const hyp_action *act);
/* Pushes {access_token, token_type, expires_at, expires_in, scope, scopes}. */
void hyp_token_push(lua_State *L, const hyp_engine *E, double now);
/* Pushes the current token as a cache stores it: {access_token, expires_at, lifetime, scope}. */
void hyp_cached_push(lua_State *L, const hyp_engine *E);
/* Pushes what to tell the shared store ({limit, window, remaining, reset,
 * pause, age}, unknown fields absent), or nil when o is NULL. */
void hyp_obs_push(lua_State *L, const hyp_store_obs *o, double now);

/* ----------------------------------------------------------------- input.c */

/* Reads an attempt's result table at idx (an answer {status, headers, body
 * [, body_in_file, elapsed]} or a failure {error, sent, message [, status,
 * headers]}) into res, resetting it first. Raises on a malformed table. */
void hyp_result_read(lua_State *L, int idx, hyp_result *res);
/* Reads a token cache's answer at idx — a token table {access_token,
 * expires_at, lifetime, scope}, a table {denied = {status, message}}, a
 * number (seconds to wait before asking again), {failed = true} (a Lua
 * driver's cache raised) or nil (a miss; then the string at ticket_idx, if
 * any, is its ticket; ticket_idx 0: none) — into *out, pushing the 7 fields
 * (raw reads) that *out points into: keep them until the step. Returns 1 when
 * the answer is more than a plain miss. */
int hyp_cached_read(lua_State *L, int idx, int ticket_idx, hyp_cached *out);
/* Reads the store's answer at idx..idx+2 (wait, reserved, fleet: what
 * acquire returned; a wait that is not a number: it failed) into *g. */
void hyp_grant_read(lua_State *L, int idx, hyp_grant *g);

/* ---------------------------------------------------------------- driver.c */

/* A driver's context for one run of a call: what every action needs. */
typedef struct hyp_driver {
  lua_State *L;
  struct hyp_client *cl;
  hyp_calludata *cu;
  int uv;                  /* stack index of the client's user-value table (its Lua functions) */
  int live;                /* every step reads the clock (blocking driver); else now is fixed */
  double now;              /* of the latest step */
  hyp_input in;            /* the next step's input */
  hyp_cached cached;       /* where a token cache's answer is read (in.cached) */
  hyp_grant grant;         /* where the shared store's grant is read (in.grant) */
} hyp_driver;

/* Starts d for the call cu of the client at client_idx at time now: pushes
 * the client's user-value table (keep it until the run ends). */
void hyp_driver_init(hyp_driver *d, lua_State *L, int client_idx, hyp_calludata *cu, double now);
/* Steps the call with d->in until an action for the driver: SEND, SLEEP,
 * DONE or FAIL, performing the callback actions on the way; with all, after
 * one step, whatever it is. Raises when the call was misused or a hook
 * raised. */
void hyp_driver_run(hyp_driver *d, int all, hyp_action *act);
/* Performs a callback action (CACHE_GET, CACHE_SET, CACHE_RELEASE, ACQUIRE,
 * ON_REQUEST, ON_RESPONSE) and sets d->in for the next step; a cache's answer
 * is left on the stack for it. */
void hyp_driver_callback(hyp_driver *d, const hyp_action *act);
/* Pushes the Lua function of a callback action. */
void hyp_driver_push_fn(const hyp_driver *d, const hyp_action *act);
/* The seconds a SLEEP action asks for: act->seconds plus act->jitter times a
 * draw from the client's random function or its own generator. Raises when
 * the random function returns something odd. */
double hyp_driver_sleep(const hyp_driver *d, const hyp_action *act);
/* The blocking driver (a lua_CFunction, run in protected mode): arguments
 * the client, whose call state is prepared, and a progress function or nil.
 * Returns value, meta | token, nil | nil, err. Raises "hypatos: interrupted"
 * when the interpreter got SIGINT during a transfer or a wait. */
int hyp_drive(lua_State *L);

/* ---------------------------------------------------------------- client.c */

typedef struct hyp_client {
  hyp_engine E;
  hyp_transport *T;        /* created on first use */
  hyp_calludata call;      /* the state of blocking calls */
  int busy;                /* steps of this client's calls running (blocking or prepared):
                              close() raises meanwhile */
  int running;             /* the blocking call (its state is cl->call) is running */
  int closed;
  int has_random;          /* a random function (option "random") draws the jitter */
  uint64_t rng;            /* else this generator */
  char quota_key[17 + 32 + 1]; /* "hypatos-quota:v1:" and the tenant's HMAC: the shared store's key */
  char uid[17];            /* this client among those sharing a store (random hex) */
} hyp_client;

hyp_client *hyp_client_check(lua_State *L, int idx);            /* raises when closed */
int hyp_client_open(lua_State *L);                              /* metatable; pushes new() */

#endif
