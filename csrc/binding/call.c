/*
 * binding/call.c — the hypatos.Call userdata: the engine for drivers written
 * in Lua (a test with a fake clock, client:map's multi driver, the nginx
 * cosocket driver). client:prepare() makes one; client:prepare_token() one
 * for the token request alone.
 *
 * call:step(now [, result]) runs the engine's callback actions itself (token
 * cache, store, hooks: in C, see driver.c) and returns only what a transport must
 * do:
 *
 *   local call = client:prepare("GET", "/users", {query = {limit = 5}})
 *   local act = call:step(now)                 -- first action
 *   while act.type == "send" or act.type == "sleep" do
 *     if act.type == "send" then act = call:step(now, {status = 200, headers = {...}, body = "..."})
 *     else act = call:step(now + act.seconds) end
 *   end
 *   -- act.type == "done": act.value, act.meta; "fail": act.error
 *
 * call:advance(now [, input [, ticket]]) is the same step, but hands every
 * action to the driver, so user code runs where the driver is (and may yield
 * there):
 *   {type = "cache_get", fn = get, key = k [, refused = token]}  → advance(now, get(k, refused))
 *     (what get returns: a token table, {denied = {status, message}}, a number
 *     of seconds to wait before asking again, or nil and maybe a ticket)
 *   {type = "cache_set", fn = set, key = k, token = t [, ticket]} → advance(now)
 *   {type = "cache_release", fn = release, key = k, ticket [, error]} → advance(now)
 *   {type = "acquire", fn = acquire, key = k, uid, obs, max_wait}  → advance(now, fn(k, uid, obs, max_wait))
 *     (wait, reserved, fleet; a wait that is not a number: the store failed)
 *   {type = "hook", name = "on_request"|"on_response", fn = f, info = t} → advance(now)
 * (a cache's errors count as a miss; a hook's errors are the driver's to raise).
 *
 * A result's headers are a table {name = value}, or a header_block:
 * "name\0value\0" for each field, as a string or as the hypatos.HeaderBlock
 * core.http_head makes (taken as it is: no table to build and walk).
 * A failed attempt is fed as {error = "connect"|"resolve"|"tls"|"tls_verify"|"timeout"|
 * "send"|"recv"|"closed"|"partial"|"too_large"|"io"|<libcurl code>, sent = bool, message = "..."
 * [, status, headers]} (status and headers: what had arrived before the failure, if anything)
 * ("too_large": an answer held in memory went over act.max_body_size);
 * a 2xx answer the driver streamed to act.output as {status, headers,
 * body_in_file = true}; after a hypatos.Multi performed the attempt, as
 * call:step(now, true). A sleep's seconds include the jitter, drawn here.
 */
#include "binding.h"

#include "../engine/urls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks argument idx is an open hypatos.Call. */
static hyp_calludata *check_call(lua_State *L, int idx) {
  hyp_calludata *cu = luaL_checkudata(L, idx, HYP_CALL_MT);
  if (cu->closed) luaL_error(L, "hypatos.Call is closed");
  if (cu->in_multi) luaL_error(L, "hypatos.Call is being sent by a hypatos.Multi");
  return cu;
}

/* Releases the call (idempotent): request, buffers, token fetch ownership;
 * also the buffers a recycled call kept (closed == 2). */
static int call_gc(lua_State *L) {
  hyp_calludata *cu = luaL_checkudata(L, 1, HYP_CALL_MT);
  if (cu->in_multi) return luaL_error(L, "hypatos.Call cannot be closed while a hypatos.Multi sends it");
  if (cu->closed != 1) {
    hyp_call_free(cu->E, &cu->c);
    hyp_result_free(&cu->res);
    cu->closed = 1;
  }
  return 0;
}

/* Pushes the error value of a call that cannot be sent (rc -2: a local I/O
 * problem, else invalid data), named by the base URL and the path; returns -1. */
static int setup_failed(lua_State *L, hyp_client *cl, hyp_calludata *cu, int rc, const char *msg, const char *path) {
  hyp_errinfo e;
  hyp_errinfo_init(&e, rc == -2 ? "io" : "invalid", msg);
  e.method = cu->c.req.method;
  lua_pushfstring(L, "%s%s", cl->E.cfg.base_url, path);
  e.url = lua_tostring(L, -1);
  hyp_push_error(L, &e);
  lua_remove(L, -2);
  hyp_scrub(L, -1, &cl->E);
  return -1;
}

/* See binding.h. */
int hyp_call_setup(lua_State *L, int client_idx, hyp_calludata *cu, const char *method,
                   const char *path, int opts_idx, int token_only) {
  hyp_client *cl = lua_touserdata(L, client_idx);
  cu->E = &cl->E;
  cu->client = cl;
  cu->closed = 0;
  if (token_only) {
    strcpy(cu->c.req.method, "POST");
    if (hyp_buf_adds(&cu->c.req.url, cl->E.cfg.token_url)) luaL_error(L, "hypatos: out of memory");
    return 0;
  }
  char msg[512];
  int rc = hyp_request_prepare(L, &cl->E.cfg, method, path, opts_idx, &cu->c.req, msg, sizeof msg);
  return rc == 0 ? 0 : setup_failed(L, cl, cu, rc, msg, path);
}

/* See binding.h. */
int hyp_call_setup_op(lua_State *L, int client_idx, hyp_calludata *cu, const hyp_op *op, int args, int body) {
  hyp_client *cl = lua_touserdata(L, client_idx);
  cu->E = &cl->E;
  cu->client = cl;
  cu->closed = 0;
  char msg[512];
  int rc = hyp_request_op(L, &cl->E.cfg, op, args, body, &cu->c.req, msg, sizeof msg);
  return rc == 0 ? 0 : setup_failed(L, cl, cu, rc, msg, op->path);
}

/* Calls a client keeps for its next client:prepare (see call:recycle). */
#define SPARE_CALLS 16

/* Pushes the list of spare calls in the user-value table of the client at
 * client_idx (created when create is set; else nil when there is none). */
static int push_spares(lua_State *L, int client_idx, int create) {
  lua_getuservalue(L, client_idx);
  lua_getfield(L, -1, ".spare_calls");
  if (lua_isnil(L, -1) && create) {
    lua_pop(L, 1);
    lua_createtable(L, SPARE_CALLS, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, ".spare_calls");
  }
  lua_remove(L, -2);
  return lua_istable(L, -1);
}

/* Takes a spare call of the client at client_idx and pushes it, or returns
 * NULL (nothing pushed). */
static hyp_calludata *take_spare(lua_State *L, int client_idx) {
  if (!push_spares(L, client_idx, 0)) {
    lua_pop(L, 1);
    return NULL;
  }
  size_t n = lua_rawlen(L, -1);
  if (n == 0) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_rawgeti(L, -1, (int)n);
  lua_pushnil(L);
  lua_rawseti(L, -3, (int)n);
  lua_remove(L, -2);
  return lua_touserdata(L, -1);
}

/* Pushes a new hypatos.Call for the client at client_idx (absolute), not
 * yet set up — a recycled one of the client when it keeps one (call:recycle:
 * its buffers, its user value) —; its user value (pushed above it, left on the
 * stack) pins the client. */
static hyp_calludata *new_call(lua_State *L, int client_idx, int token_only) {
  hyp_client_check(L, client_idx);
  hyp_calludata *cu = take_spare(L, client_idx);
  if (cu) {
    cu->closed = 0;
    cu->c.token_only = token_only; /* the rest was made ready by call:recycle */
    cu->res.code = -1;
    lua_getuservalue(L, -1);
    return cu;
  }
  cu = HYP_NEWUSERDATA(L, sizeof *cu);
  memset(cu, 0, sizeof *cu);
  luaL_setmetatable(L, HYP_CALL_MT);
  lua_createtable(L, 0, 3); /* pins the client (and the options and the body) */
  lua_pushvalue(L, client_idx);
  lua_setfield(L, -2, "client");
  lua_pushvalue(L, -1);
  lua_setuservalue(L, -3);
  hyp_call_init(&cu->c, token_only);
  cu->res.code = -1;
  return cu;
}

/* Pushes a new hypatos.Call for the client at client_idx (see hyp_call_setup);
 * returns NULL with an error value pushed instead on bad data. */
static hyp_calludata *call_push(lua_State *L, int client_idx, const char *method, const char *path,
                                int opts_idx, int token_only) {
  client_idx = lua_absindex(L, client_idx);
  if (opts_idx) opts_idx = lua_absindex(L, opts_idx);
  hyp_calludata *cu = new_call(L, client_idx, token_only);
  int idx = lua_gettop(L) - 1;
  if (opts_idx && lua_type(L, opts_idx) == LUA_TTABLE) {
    lua_pushvalue(L, opts_idx);
    lua_setfield(L, -2, "opts");
    lua_getfield(L, opts_idx, "body");
    lua_setfield(L, -2, "body");
  }
  lua_pop(L, 1);
  if (hyp_call_setup(L, client_idx, cu, method, path, opts_idx, token_only) == 0) return cu;
  lua_remove(L, idx); /* the error stays */
  return NULL;
}

/* Sets t[k] = the value on the top of the stack (popped). */
#define SETF(L, k) lua_setfield((L), -2, (k))

/* t[k] = the value pushed by expr, t on the top of the stack (keys: hyp_keys_push's). */
#define SETK(L, keys, k, expr) (hyp_pushkey((L), (keys), (k)), (expr), lua_rawset((L), -3))

/* Adds the fields of a SEND action to the table on the top of the stack (the
 * interned names at keys). */
static void push_send(lua_State *L, int keys, const hyp_outgoing *o) {
  SETK(L, keys, HYP_K_METHOD, lua_pushstring(L, o->method));
  SETK(L, keys, HYP_K_URL, lua_pushstring(L, o->url));
  /* headers: a table built on first access (action_index) */
  SETK(L, keys, HYP_K_HEADER_LINES, hyp_lines_push_text(L, o->headers, o->nheaders));
  if (o->body_kind == HYP_BODY_MEMORY) {
    SETK(L, keys, HYP_K_BODY, lua_pushlstring(L, o->body, o->body_len));
  } else if (o->body_kind == HYP_BODY_FILE) {
    SETK(L, keys, HYP_K_BODY_FILE, lua_pushstring(L, o->body_path));
    SETK(L, keys, HYP_K_BODY_SIZE, lua_pushnumber(L, (lua_Number)o->body_size));
  }
  if (o->output_path) SETK(L, keys, HYP_K_OUTPUT, lua_pushstring(L, o->output_path));
  SETK(L, keys, HYP_K_TIMEOUT, lua_pushnumber(L, o->timeout));
  SETK(L, keys, HYP_K_CONNECT_TIMEOUT, lua_pushnumber(L, o->connect_timeout));
  if (o->max_body) /* answers held in memory: at most this many bytes */
    SETK(L, keys, HYP_K_MAX_BODY_SIZE, lua_pushnumber(L, (lua_Number)o->max_body));
  if (o->deadline > 0) /* a hard bound on the whole attempt, streamed or not */
    SETK(L, keys, HYP_K_DEADLINE, lua_pushnumber(L, o->deadline));
  SETK(L, keys, HYP_K_STREAM, lua_pushboolean(L, o->stream));
  SETK(L, keys, HYP_K_FRESH, lua_pushboolean(L, o->fresh));
  SETK(L, keys, HYP_K_TOKEN_REQUEST, lua_pushboolean(L, o->is_token));
}

static const char ACTION_MT_KEY = 'a'; /* registry: the metatable of send actions */

/* __index of a send action: its headers table, built from header_lines on first
 * access (the cosocket transport sends the lines as they are, and never asks). */
static int action_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (!k || strcmp(k, "headers") != 0) return 0;
  lua_getfield(L, 1, "header_lines");
  hyp_text_lines_push(L, -1);
  lua_pushliteral(L, "headers");
  lua_pushvalue(L, -2);
  lua_rawset(L, 1); /* from now on a plain field */
  return 1;
}

/* Pushes the action table for a Lua driver. */
static void push_action(const hyp_driver *d, const hyp_action *act) {
  static const char *const NAMES[] = {"",          "send",      "sleep", "done", "fail",          "cache_get",
                                      "cache_set", "hook",      "hook",  "cache_release", "acquire"};
  lua_State *L = d->L;
  hyp_calludata *cu = d->cu;
  int keys = hyp_keys_push(L);
  lua_createtable(L, 0, act->type == HYP_ACT_SEND ? 16 : 8); /* a send has up to 15 fields */
  switch (act->type) { /* the names of the usual actions are interned (keys.c) */
  case HYP_ACT_SEND: SETK(L, keys, HYP_K_TYPE, hyp_pushkey(L, keys, HYP_K_SEND)); break;
  case HYP_ACT_DONE: SETK(L, keys, HYP_K_TYPE, hyp_pushkey(L, keys, HYP_K_DONE)); break;
  case HYP_ACT_FAIL: SETK(L, keys, HYP_K_TYPE, hyp_pushkey(L, keys, HYP_K_FAIL)); break;
  case HYP_ACT_SLEEP: SETK(L, keys, HYP_K_TYPE, hyp_pushkey(L, keys, HYP_K_SLEEP)); break;
  default: lua_pushstring(L, NAMES[act->type]), SETF(L, "type");
  }
  switch (act->type) {
  case HYP_ACT_SEND:
    push_send(L, keys, act->out);
    if (cu->E->cfg.proxy && !hyp_loopback_url(act->out->url)) /* loopback is never proxied */
      SETK(L, keys, HYP_K_PROXY, lua_pushstring(L, cu->E->cfg.proxy));
    lua_pushlightuserdata(L, (void *)&ACTION_MT_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setmetatable(L, -2);
    break;
  case HYP_ACT_SLEEP:
    SETK(L, keys, HYP_K_SECONDS, lua_pushnumber(L, hyp_driver_sleep(d, act)));
    break;
  case HYP_ACT_DONE: {
    int n = hyp_answer_done(L, cu, act, d->now);
    if (n == 2) {
      hyp_setk(L, -3, keys, HYP_K_META);
      hyp_setk(L, -2, keys, HYP_K_VALUE);
    } else { /* a body that should be JSON is not: the call fails */
      hyp_setk(L, -2, keys, HYP_K_ERROR);
      SETK(L, keys, HYP_K_TYPE, hyp_pushkey(L, keys, HYP_K_FAIL));
    }
    break;
  }
  case HYP_ACT_FAIL:
    hyp_answer_fail(L, cu, act->error);
    hyp_setk(L, -2, keys, HYP_K_ERROR);
    break;
  case HYP_ACT_CACHE_GET:
  case HYP_ACT_CACHE_SET:
  case HYP_ACT_CACHE_RELEASE:
    hyp_driver_push_fn(d, act), SETF(L, "fn");
    lua_pushstring(L, cu->E->cache_key), SETF(L, "key");
    if (act->ticket) lua_pushstring(L, act->ticket), SETF(L, "ticket");
    if (act->type == HYP_ACT_CACHE_SET) {
      hyp_cached_push(L, cu->E);
      SETF(L, "token");
    } else if (act->type == HYP_ACT_CACHE_RELEASE) {
      if (act->error) hyp_answer_fail(L, cu, act->error), SETF(L, "error");
    } else if (cu->E->token.refused) {
      lua_pushstring(L, cu->E->token.refused), SETF(L, "refused");
    }
    break;
  case HYP_ACT_ACQUIRE:
    hyp_driver_push_fn(d, act), SETF(L, "fn");
    lua_pushstring(L, d->cl->quota_key), SETF(L, "key");
    lua_pushstring(L, d->cl->uid), SETF(L, "uid");
    hyp_obs_push(L, act->obs, d->now);
    SETF(L, "obs");
    lua_pushnumber(L, act->seconds), SETF(L, "max_wait");
    break;
  default: /* ON_REQUEST, ON_RESPONSE */
    lua_pushstring(L, act->type == HYP_ACT_ON_REQUEST ? "on_request" : "on_response"), SETF(L, "name");
    hyp_driver_push_fn(d, act), SETF(L, "fn");
    hyp_answer_hook_info(L, cu, act);
    SETF(L, "info");
  }
  lua_remove(L, keys);
}

/* Pushes the outcome of a run (multi:run): "send" (the attempt handed to
 * the multi at multi_idx, with the progress function at progress_idx, if
 * any; the call is at 1), "sleep", seconds, "done", value, meta, or "fail", err. Returns the
 * number of values. */
static int push_run(const hyp_driver *d, const hyp_action *act, int multi_idx, int progress_idx) {
  lua_State *L = d->L;
  switch (act->type) {
  case HYP_ACT_SEND:
    /* the caller's progress function follows its own transfers, not the token request's */
    hyp_multi_start(L, multi_idx, 1, d->cu, !act->out->is_token && lua_isfunction(L, progress_idx) ? progress_idx : 0);
    lua_pushliteral(L, "send");
    return 1;
  case HYP_ACT_SLEEP:
    lua_pushliteral(L, "sleep");
    lua_pushnumber(L, hyp_driver_sleep(d, act));
    return 2;
  case HYP_ACT_DONE:
    lua_pushliteral(L, "done");
    if (hyp_answer_done(L, d->cu, act, d->now) == 2) return 3;
    lua_pushliteral(L, "fail"); /* a body that should be JSON is not */
    lua_replace(L, -3);
    return 2;
  default:
    lua_pushliteral(L, "fail");
    hyp_answer_fail(L, d->cu, act->error);
    return 2;
  }
}

/* The modes of step_protected. */
enum { STEP, ADVANCE, RUN };

/* The step of call:step, call:advance or multi:run, in protected mode:
 * arguments the call, the mode, its client, the input kind (0 none, 1 a
 * result table, 2 the multi's answer, 3 a token cache's answer, 4 the shared
 * store's grant), now, then the input's values (an answer; a cache's answer
 * and ticket; the grant's wait, reserved and fleet; for a run the multi and
 * the progress function). */
static int step_protected(lua_State *L) {
  enum { CALL = 1, MODE, CLIENT, KIND, NOW, VALUE };
  hyp_calludata *cu = lua_touserdata(L, CALL);
  int kind = (int)lua_tointeger(L, KIND), mode = (int)lua_tointeger(L, MODE);
  hyp_driver d;
  hyp_driver_init(&d, L, CLIENT, cu, (double)lua_tonumber(L, NOW));
  if (kind == 1) {
    hyp_result_read(L, VALUE, &cu->res);
    d.in.result = &cu->res;
  } else if (kind == 2) {
    d.in.result = &cu->res;
  } else if (kind == 3) {
    if (hyp_cached_read(L, VALUE, VALUE + 1, &d.cached)) d.in.cached = &d.cached;
  } else if (kind == 4) {
    hyp_grant_read(L, VALUE, &d.grant);
    d.in.grant = &d.grant;
  }
  hyp_action act;
  cu->sending = cu->acquiring = 0;
  hyp_driver_run(&d, mode == ADVANCE, &act);
  cu->sending = act.type == HYP_ACT_SEND;
  cu->acquiring = act.type == HYP_ACT_ACQUIRE;
  if (mode == RUN) return push_run(&d, &act, VALUE, VALUE + 1);
  push_action(&d, &act);
  return 1;
}

static const char STEP_KEY = 's'; /* registry: step_protected as a function value */

/* Runs step_protected for the call at 1 with the client marked busy (closing
 * it from a hook or the cache raises instead of freeing what the step uses):
 * mode, input kind, now, and the values at v[0..2] (0: nil). Returns the
 * number of results. */
static int protected_step(lua_State *L, int mode, int kind, double now, const int v[3]) {
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "client");
  hyp_client *cl = hyp_client_check(L, -1);
  int client = lua_gettop(L), top = client;
  lua_pushlightuserdata(L, (void *)&STEP_KEY); /* step_protected, made once (a closure per step before) */
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, mode);
  lua_pushvalue(L, client);
  lua_pushinteger(L, kind);
  lua_pushnumber(L, now);
  for (int i = 0; i < 3; i++) {
    if (v[i])
      lua_pushvalue(L, v[i]);
    else
      lua_pushnil(L);
  }
  cl->busy++;
  int rc = lua_pcall(L, 8, LUA_MULTRET, 0);
  cl->busy--;
  if (rc != 0) return lua_error(L);
  return lua_gettop(L) - top;
}

/* call:step / call:advance: checks the arguments, then protected_step. */
static int call_step_common(lua_State *L, int mode) {
  hyp_calludata *cu = check_call(L, 1);
  double now = (double)luaL_checknumber(L, 2);
  int kind = 0;
  if (lua_isboolean(L, 3) && lua_toboolean(L, 3)) {
    if (!cu->sending) return luaL_error(L, "hypatos.Call: no attempt was sent");
    kind = 2; /* a hypatos.Multi left the answer there */
  } else if (cu->acquiring) {
    kind = 4; /* the store's grant: wait, reserved, fleet (nil: it failed) */
  } else if (!lua_isnoneornil(L, 3) || (!cu->sending && lua_type(L, 4) == LUA_TSTRING)) {
    kind = cu->sending ? 1 : 3; /* an answer, or a cache's (nil and a ticket included) */
  }
  lua_settop(L, 5);
  const int v[3] = {3, 4, 5};
  return protected_step(L, mode, kind, now, v);
}

/* See binding.h. */
int hyp_call_run(lua_State *L) {
  hyp_calludata *cu = check_call(L, 1);
  luaL_checkudata(L, 2, HYP_MULTI_MT);
  double now = (double)luaL_checknumber(L, 3);
  if (cu->acquiring) return luaL_error(L, "hypatos.Call: a call stepped with call:advance cannot be run");
  lua_settop(L, 4);
  const int v[3] = {2, 4, 0}; /* the multi, the progress function */
  return protected_step(L, RUN, cu->sending ? 2 : 0, now, v);
}

/** call:step(now [, result]) → action table (send, sleep, done, fail); the
 * token cache and hooks run inside. See the file banner. */
static int call_step(lua_State *L) { return call_step_common(L, STEP); }

/** call:advance(now [, input [, ticket]]) → action table, callbacks included
 * (cache_get, cache_set, cache_release, acquire, hook): for drivers that run
 * user code themselves. After cache_get, input and ticket are what the
 * cache's get returned; after acquire, call:advance(now, wait, reserved,
 * fleet) with what the store's acquire returned (wait nil: it failed). */
static int call_advance(lua_State *L) { return call_step_common(L, ADVANCE); }

/** client:prepare(method, path [, opts]) → call | nil, err (bad data). */
int hyp_call_new(lua_State *L) {
  const char *method = hyp_request_arg(L, 2, "method");
  const char *path = hyp_request_arg(L, 3, "path");
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  if (call_push(L, 1, method, path, lua_isnoneornil(L, 4) ? 0 : 4, 0)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/** client:prepare_op(op, ...) → call | nil, err | nothing: client:call's
 * arguments (a compiled operation, its path parameters, its body), prepared
 * as a hypatos.Call for a driver written in Lua (client:map's tasks).
 * Nothing at all, as client:call, when the call is one for the general path
 * (client:prepare). */
int hyp_call_new_op(lua_State *L) {
  const hyp_op *op = luaL_checkudata(L, 2, HYP_OP_MT);
  int body;
  if (!hyp_op_args(L, op, 3, &body)) return 0;
  int top = lua_gettop(L);
  hyp_calludata *cu = new_call(L, 1, 0);
  lua_pop(L, 1);
  if (hyp_call_setup_op(L, 1, cu, op, 3, body) == 0) return 1;
  lua_remove(L, top + 1); /* the call; the error stays */
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/** client:prepare_token() → call: the token request alone, as client:token()
 * makes it (its step ends with done: value = the token, or fail). */
int hyp_call_new_token(lua_State *L) {
  call_push(L, 1, "POST", "", 0, 1);
  return 1;
}

/** call:close() — releases the call; idempotent. */
static int call_close(lua_State *L) { return call_gc(L); }

/** call:recycle() — ends the call as call:close() does (what it holds in the
 * client goes back), but keeps it, with its buffers, for the client's next
 * client:prepare / prepare_op / prepare_token, which then allocates nothing
 * (a driver that makes many calls: the nginx one). A client keeps a few;
 * beyond them, and for a closed client, this closes the call. The call must
 * not be used again. */
static int call_recycle(lua_State *L) {
  hyp_calludata *cu = luaL_checkudata(L, 1, HYP_CALL_MT);
  if (cu->in_multi) return luaL_error(L, "hypatos.Call cannot be closed while a hypatos.Multi sends it");
  if (cu->closed) return 0;
  lua_settop(L, 1);
  lua_getuservalue(L, 1);
  lua_getfield(L, 2, "client");
  hyp_client *cl = lua_touserdata(L, 3); /* always the client (new_call) */
  if (!cl || cl->closed || !push_spares(L, 3, 1) || lua_rawlen(L, 4) >= SPARE_CALLS) return call_gc(L);
  hyp_call_reset(cu->E, &cu->c, 0); /* let go in the client; the header lines wiped */
  hyp_buf *keep[] = {&cu->res.headers, &cu->res.body};
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
    if (keep[i]->cap > 65536) hyp_buf_free(keep[i]); /* do not hold big bodies */
  hyp_result_reset(&cu->res);
  cu->sending = cu->acquiring = cu->token_answer = 0;
  cu->closed = 2;
  lua_pushnil(L);
  lua_setfield(L, 2, "opts");
  lua_pushnil(L);
  lua_setfield(L, 2, "body");
  lua_pushvalue(L, 1);
  lua_rawseti(L, 4, (int)lua_rawlen(L, 4) + 1);
  return 0;
}

/* Registers the "hypatos.Call" metatable. */
int hyp_call_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"step", call_step}, {"advance", call_advance}, {"close", call_close}, {"recycle", call_recycle},
      {NULL, NULL}};
  lua_pushlightuserdata(L, (void *)&STEP_KEY);
  lua_pushcfunction(L, step_protected);
  lua_rawset(L, LUA_REGISTRYINDEX);
  luaL_newmetatable(L, HYP_CALL_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, call_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, call_gc);
  lua_setfield(L, -2, "__close");
  lua_pushliteral(L, HYP_CALL_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, (void *)&ACTION_MT_KEY);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, action_index);
  lua_setfield(L, -2, "__index");
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 0;
}
