/*
 * binding/client.c — the hypatos.Client userdata and its blocking driver.
 *
 * core.new(opts) checks the options (options.c) and returns a client; its
 * methods prepare a call (call.c, request.c) and run it with the blocking
 * driver (driver.c: the engine's actions performed with libcurl and
 * nanosleep), in protected mode, recycling its state whatever happens. close(), __gc and
 * __close share one idempotent destructor; a closed client raises on use;
 * tostring(client) shows the base URL and client id, never a secret.
 */
#include "binding.h"

#include "../transport/hmac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks argument idx is an open client. */
hyp_client *hyp_client_check(lua_State *L, int idx) {
  hyp_client *cl = luaL_checkudata(L, idx, HYP_CLIENT_MT);
  if (cl->closed) luaL_error(L, "hypatos.Client is closed");
  return cl;
}

/* The one destructor: frees the transport and wipes the engine's secrets. */
static int client_gc(lua_State *L) {
  hyp_client *cl = luaL_checkudata(L, 1, HYP_CLIENT_MT);
  if (!cl->closed) {
    cl->closed = 1;
    hyp_call_free(&cl->E, &cl->call.c);
    hyp_result_free(&cl->call.res);
    hyp_transport_free(cl->T);
    cl->T = NULL;
    hyp_engine_free(&cl->E);
  }
  return 0;
}

/** client:close() — closes connections and forgets the token; idempotent.
 * Raises when called from a hook while a call of this client runs. */
static int client_close(lua_State *L) {
  hyp_client *cl = luaL_checkudata(L, 1, HYP_CLIENT_MT);
  if (cl->busy) luaL_error(L, "hypatos.Client cannot be closed while one of its calls runs");
  return client_gc(L);
}

/* Makes the client's blocking call state ready for the next call, keeping
 * its buffers (big ones are freed). */
static void recycle(hyp_client *cl, int token_only) {
  hyp_call_reset(&cl->E, &cl->call.c, token_only);
  hyp_buf *keep[] = {&cl->call.res.headers, &cl->call.res.body};
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
    if (keep[i]->cap > 65536) hyp_buf_free(keep[i]); /* do not hold big bodies */
    hyp_buf_reset(keep[i]);
  }
}

/* Runs the prepared blocking call; recycles its state whatever happens and
 * re-raises an error from a hook or callback. progress_idx: the progress
 * function's stack index or 0. Returns the number of results. */
static int run(lua_State *L, hyp_client *cl, int progress_idx) {
  int top = lua_gettop(L);
  lua_pushcfunction(L, hyp_drive);
  lua_pushvalue(L, 1);
  if (progress_idx)
    lua_pushvalue(L, progress_idx);
  else
    lua_pushnil(L);
  cl->busy++;
  cl->running = 1;
  int rc = lua_pcall(L, 2, LUA_MULTRET, 0);
  cl->running = 0;
  cl->busy--;
  recycle(cl, 0);
  if (rc != 0) return lua_error(L);
  return lua_gettop(L) - top;
}

/** client:request(method, path [, opts]) → value, meta | nil, err.
 * Any method and path relative to the base URL; opts as in the README. */
static int client_request(lua_State *L) {
  hyp_client *cl = hyp_client_check(L, 1);
  const char *method = hyp_request_arg(L, 2, "method");
  const char *path = hyp_request_arg(L, 3, "path");
  int opts = 0, progress = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    opts = 4;
  }
  lua_settop(L, 4);
  if (cl->running) luaL_error(L, "hypatos.Client is already running a call (called from a hook?)");
  if (opts) {
    lua_getfield(L, 4, "body"); /* 5: pinned for the whole call */
    lua_getfield(L, 4, "progress");
    progress = lua_isfunction(L, 6) ? 6 : 0;
  }
  recycle(cl, 0);
  if (hyp_call_setup(L, 1, &cl->call, method, path, opts, 0)) {
    recycle(cl, 0);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return run(L, cl, progress);
}

/** client:call(op, ...) → value, meta | nil, err | nothing: a call of a
 * compiled operation (core.op) with its path parameters, then its body (a
 * JSON table or a query table, as the op says), positionally — what the
 * generated resource methods take —, without option tables. Returns nothing
 * at all when the call is one for the general path instead (call options
 * given, an argument of another type): the caller then goes through
 * client:request, which checks and raises as always. */
static int client_call(lua_State *L) {
  hyp_client *cl = hyp_client_check(L, 1);
  const hyp_op *op = luaL_checkudata(L, 2, HYP_OP_MT);
  int body;
  if (!hyp_op_args(L, op, 3, &body)) return 0;
  if (cl->running) luaL_error(L, "hypatos.Client is already running a call (called from a hook?)");
  recycle(cl, 0);
  if (hyp_call_setup_op(L, 1, &cl->call, op, 3, body)) {
    recycle(cl, 0);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return run(L, cl, 0);
}

/** client:token() → token table | nil, err. Fetches a token if none is
 * usable. The table's __tostring never shows the token itself. */
static int client_token(lua_State *L) {
  hyp_client *cl = hyp_client_check(L, 1);
  lua_settop(L, 1);
  if (cl->running) luaL_error(L, "hypatos.Client is already running a call (called from a hook?)");
  recycle(cl, 1);
  hyp_call_setup(L, 1, &cl->call, NULL, NULL, 0, 1);
  int n = run(L, cl, 0);
  if (n == 2 && lua_isnil(L, -1)) {
    lua_pop(L, 1); /* token, nil → token */
    return 1;
  }
  return n;
}

/** client:rate_limit() → {limit, remaining, reset, reset_at, window, policy} | nil. */
static int client_rate_limit(lua_State *L) {
  hyp_client *cl = hyp_client_check(L, 1);
  hyp_rate_push(L, &cl->E.rate, hyp_now());
  return 1;
}

/** client:options() → the effective options that are not secret:
 * {base_url, token_url, client_id, scope, timeout, connect_timeout,
 * token_timeout, deadline, max_retries, backoff_base, backoff_cap, max_wait,
 * throttle, max_body_size, ca_file, proxy, user_agent}. */
static int client_options(lua_State *L) {
  hyp_client *cl = hyp_client_check(L, 1);
  const hyp_config *o = &cl->E.cfg;
  lua_createtable(L, 0, 16);
  const struct { const char *k, *v; } strs[] = {
      {"base_url", o->base_url}, {"token_url", o->token_url}, {"client_id", o->client_id},
      {"scope", o->scope},       {"ca_file", o->ca_file},     {"proxy", o->proxy},
      {"user_agent", o->user_agent}};
  for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
    if (!strs[i].v) continue;
    lua_pushstring(L, strs[i].v);
    lua_setfield(L, -2, strs[i].k);
  }
  const struct { const char *k; double v; } nums[] = {
      {"timeout", o->timeout},           {"connect_timeout", o->connect_timeout},
      {"token_timeout", o->token_timeout}, {"backoff_base", o->backoff_base},
      {"backoff_cap", o->backoff_cap},   {"max_wait", o->max_wait}};
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
    lua_pushnumber(L, nums[i].v);
    lua_setfield(L, -2, nums[i].k);
  }
  if (o->deadline > 0) {
    lua_pushnumber(L, o->deadline);
    lua_setfield(L, -2, "deadline");
  }
  lua_pushinteger(L, o->max_retries);
  lua_setfield(L, -2, "max_retries");
  lua_pushinteger(L, (lua_Integer)o->max_body_size);
  lua_setfield(L, -2, "max_body_size");
  lua_pushboolean(L, o->throttle);
  lua_setfield(L, -2, "throttle");
  return 1;
}

/** client:stats() → {requests, token_requests [, store]}: attempts sent so
 * far; with a shared store, store = {mode = "shared" | "fallback", acquires,
 * waits, wait_seconds, failures, fleet}. */
static int client_stats(lua_State *L) {
  hyp_client *cl = hyp_client_check(L, 1);
  const hyp_engine *E = &cl->E;
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, E->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, E->token_requests);
  lua_setfield(L, -2, "token_requests");
  if (E->cfg.has_store) {
    lua_createtable(L, 0, 6);
    lua_pushstring(L, E->store_fallback ? "fallback" : "shared");
    lua_setfield(L, -2, "mode");
    const struct { const char *k; long v; } F[] = {{"acquires", E->acquires}, {"waits", E->store_waits},
                                                    {"failures", E->store_failures}, {"fleet", E->fleet}};
    for (size_t i = 0; i < sizeof F / sizeof *F; i++) {
      lua_pushinteger(L, (lua_Integer)F[i].v);
      lua_setfield(L, -2, F[i].k);
    }
    lua_pushnumber(L, E->store_wait_total);
    lua_setfield(L, -2, "wait_seconds");
    lua_setfield(L, -2, "store");
  }
  return 1;
}

/* __index: methods first, then fields the Lua layer attached (resources). */
static int client_index(lua_State *L) {
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  luaL_checkudata(L, 1, HYP_CLIENT_MT);
  if (lua_type(L, 2) != LUA_TSTRING || lua_tostring(L, 2)[0] == '.') return 1;
  lua_getuservalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* __newindex: a client carries extra fields (the Lua layer's resources);
 * method names cannot be replaced. */
static int client_newindex(lua_State *L) {
  luaL_checkudata(L, 1, HYP_CLIENT_MT);
  const char *k = luaL_checkstring(L, 2);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1) || k[0] == '.') luaL_error(L, "hypatos.Client: field \"%s\" cannot be set", k);
  lua_getuservalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

/** tostring(client): "hypatos.Client(<base url>, client_id=<id>)". */
static int client_tostring(lua_State *L) {
  hyp_client *cl = luaL_checkudata(L, 1, HYP_CLIENT_MT);
  if (cl->closed)
    lua_pushliteral(L, "hypatos.Client(closed)");
  else
    lua_pushfstring(L, "hypatos.Client(%s, client_id=%s)", cl->E.cfg.base_url, cl->E.cfg.client_id);
  return 1;
}

/* HMAC-SHA-256, keyed with the client secret, of the parts (each
 * length-prefixed, so no two different lists read the same) after label;
 * the first 32 hex digits into out (33 bytes). Returns 0, or -1. */
static int keyed(const hyp_config *o, const char *label, const char *const *parts, int n, char *out) {
  hyp_buf msg = {NULL, 0, 0};
  char hex[65];
  int bad = hyp_buf_adds(&msg, label);
  for (int i = 0; i < n && !bad; i++) bad = hyp_buf_addf(&msg, "|%zu:%s", strlen(parts[i]), parts[i]);
  bad = bad || hyp_hmac_sha256_hex(o->client_secret, strlen(o->client_secret), msg.data, msg.len, hex);
  hyp_buf_free(&msg);
  if (bad) return -1;
  memcpy(out, hex, 32);
  out[32] = '\0';
  hyp_wipe(hex, sizeof hex);
  return 0;
}

/* The keys of the credentials in o, as HMACs keyed with the client secret:
 * the tenant (token URL and client id: one quota) and, within it, the token
 * (the scope too). cl->E.cache_key = "hypatos-token:v1:" tenant token (64 hex
 * digits), cl->quota_key = "hypatos-quota:v1:" tenant. Clients with the same
 * credentials share them; any other secret gives other keys, so a shared
 * cache or store never hands a token to a client whose secret is wrong, and
 * a dump shows neither the secret nor the client id. Returns 0, or -1. */
static int credential_keys(hyp_client *cl) {
  const hyp_config *o = &cl->E.cfg;
  const char *scope = o->scope ? o->scope : "";
  const char *tenant_parts[] = {o->token_url, o->client_id};
  const char *token_parts[] = {o->token_url, o->client_id, scope};
  char tenant[33], token[33];
  if (keyed(o, "hypatos-tenant-v1", tenant_parts, 2, tenant) ||
      keyed(o, "hypatos-token-v1", token_parts, 3, token))
    return -1;
  snprintf(cl->quota_key, sizeof cl->quota_key, "hypatos-quota:v1:%s", tenant);
  char *key = malloc(17 + 64 + 1);
  if (!key) return -1;
  snprintf(key, 17 + 64 + 1, "hypatos-token:v1:%s%s", tenant, token);
  cl->E.cache_key = key;
  return 0;
}

/** core.new(opts) → client. Raises on misuse, naming the option. */
static int client_new(lua_State *L) {
  lua_settop(L, 1);
  hyp_client *cl = HYP_NEWUSERDATA(L, sizeof *cl);
  memset(cl, 0, sizeof *cl);
  luaL_setmetatable(L, HYP_CLIENT_MT);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setuservalue(L, 2);
  hyp_engine_init(&cl->E);
  hyp_call_init(&cl->call.c, 0);
  cl->rng = hyp_seed();
  hyp_options_parse(L, 1, 3, &cl->E.cfg, &cl->has_random);
  if (credential_keys(cl)) luaL_error(L, "hypatos.new: cannot compute the token cache key (libcrypto)");
  snprintf(cl->uid, sizeof cl->uid, "%016llx", (unsigned long long)hyp_seed());
  lua_settop(L, 2);
  return 1;
}

/* Registers the "hypatos.Client" metatable and adds new() to the module table
 * on the top of the stack. */
int hyp_client_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"request", client_request},
                                     {"call", client_call},
                                     {"prepare", hyp_call_new},
                                     {"prepare_op", hyp_call_new_op},
                                     {"prepare_token", hyp_call_new_token},
                                     {"token", client_token},
                                     {"rate_limit", client_rate_limit},
                                     {"stats", client_stats},
                                     {"options", client_options},
                                     {"close", client_close},
                                     {NULL, NULL}};
  luaL_newmetatable(L, HYP_CLIENT_MT);
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1); /* module.Client: the methods, for the Lua layer's drivers */
  lua_setfield(L, -4, "Client");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, client_index, 1);
  lua_setfield(L, -3, "__index");
  lua_pushcclosure(L, client_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, client_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, client_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, client_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, HYP_CLIENT_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, client_new);
  lua_setfield(L, -2, "new");
  return 0;
}
