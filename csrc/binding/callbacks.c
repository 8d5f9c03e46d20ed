/*
 * binding/callbacks.c — the engine's callback actions performed in C, for
 * the blocking driver (client.c) and for hypatos.Call:step (call.c): the
 * token cache's get/set/release (in protected mode: a failing cache is a
 * miss, errors of set and release are ignored), the
 * on_request/on_response hooks (their errors propagate), and the jitter of a
 * SLEEP drawn from the client's random function or its own generator. Drivers
 * written in Lua that must let user code yield (nginx) take these actions
 * from Call:advance and run them themselves.
 */
#include "binding.h"

#include <string.h>

/* See binding.h. */
void hyp_step(lua_State *L, hyp_calludata *cu, const hyp_input *in, hyp_action *act) {
  if (in->result && cu->c.out.is_token) cu->token_answer = 1;
  const char *misuse = hyp_call_step(cu->E, &cu->c, in, act);
  if (misuse) luaL_error(L, "hypatos: %s", misuse);
  if (cu->token_answer && act->type != HYP_ACT_ON_RESPONSE) {
    /* the engine has read the token answer (in cu->res); a 2xx one held the token */
    hyp_result *r = &cu->res;
    if (!r->failure && r->status >= 200 && r->status < 300) hyp_wipe(r->body.data, r->body.len);
    cu->token_answer = 0;
  }
}

/* See binding.h. */
double hyp_sleep_seconds(lua_State *L, int client_idx, const hyp_action *act) {
  if (!(act->jitter > 0)) return act->seconds;
  hyp_client *cl = lua_touserdata(L, client_idx);
  double u;
  if (cl->has_random) {
    hyp_client_getuv(L, client_idx, ".random");
    lua_call(L, 0, 1);
    u = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(u >= 0 && u < 1)) luaL_error(L, "hypatos: option \"random\" must return a number in [0, 1)");
  } else {
    u = hyp_random(&cl->rng);
  }
  return act->seconds + act->jitter * u;
}

/* See binding.h. */
int hyp_cache_get(lua_State *L, int client_idx, const hyp_engine *E, hyp_cached *out) {
  hyp_client_getuv(L, client_idx, ".token_cache_get");
  lua_pushstring(L, E->cache_key);
  int nargs = 1;
  if (E->token.refused) {
    lua_pushstring(L, E->token.refused);
    nargs++;
  }
  int failed = lua_pcall(L, nargs, 2, 0) != 0; /* get(key [, refused]): a failing cache is a miss */
  if (failed) {
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushnil(L);
  }
  int top = lua_gettop(L);
  int any = hyp_cached_read(L, top - 1, top, out);
  out->failed = failed; /* with a shared store: its breaker opens */
  return any || failed;
}

/* See binding.h. */
int hyp_cached_read(lua_State *L, int idx, int ticket_idx, hyp_cached *out) {
  static const char *const KEYS[] = {"access_token", "scope", "expires_at", "lifetime", "denied", "failed"};
  memset(out, 0, sizeof *out);
  idx = lua_absindex(L, idx);
  ticket_idx = ticket_idx ? lua_absindex(L, ticket_idx) : 0;
  int t = lua_type(L, idx);
  for (int i = 0; i < 6; i++) { /* raw reads, left on the stack: the strings stay alive */
    if (t == LUA_TTABLE) {
      lua_pushstring(L, KEYS[i]);
      lua_rawget(L, idx);
    } else {
      lua_pushnil(L);
    }
  }
  out->failed = lua_toboolean(L, -1); /* {failed = true}: a driver's cache raised */
  lua_pop(L, 1);
  int denied = lua_gettop(L);
  for (int i = 0; i < 2; i++) { /* denied.status, denied.message */
    if (lua_type(L, denied) == LUA_TTABLE) {
      lua_pushstring(L, i ? "message" : "status");
      lua_rawget(L, denied);
    } else {
      lua_pushnil(L);
    }
  }
  if (lua_type(L, -7) == LUA_TSTRING) out->access_token = lua_tolstring(L, -7, &out->access_len);
  if (lua_type(L, -6) == LUA_TSTRING) out->scope = lua_tostring(L, -6);
  if (lua_type(L, -5) == LUA_TNUMBER) out->expires_at = (double)lua_tonumber(L, -5);
  if (lua_type(L, -4) == LUA_TNUMBER) out->lifetime = (double)lua_tonumber(L, -4);
  if (lua_type(L, -2) == LUA_TNUMBER) {
    lua_Number st = lua_tonumber(L, -2);
    out->denied_status = st >= 100 && st <= 999 ? (long)st : 0;
    if (out->denied_status && lua_type(L, -1) == LUA_TSTRING) out->denied_message = lua_tostring(L, -1);
  }
  if (t == LUA_TNUMBER) {
    lua_Number w = lua_tonumber(L, idx);
    out->wait = w > 0 && w < 1e9 ? (double)w : 0;
  }
  if (t == LUA_TNIL && ticket_idx && lua_type(L, ticket_idx) == LUA_TSTRING)
    out->ticket = lua_tolstring(L, ticket_idx, &out->ticket_len);
  return out->access_token || out->ticket || out->wait > 0 || out->denied_status > 0 || out->failed;
}

/* See binding.h. */
void hyp_obs_push(lua_State *L, const hyp_store_obs *o, double now) {
  if (!o) {
    lua_pushnil(L);
    return;
  }
  lua_createtable(L, 0, 6);
  const struct { const char *k; double v; } F[] = {
      {"limit", o->limit}, {"window", o->window}, {"remaining", o->remaining}, {"reset", o->reset}};
  for (size_t i = 0; i < sizeof F / sizeof *F; i++) {
    if (F[i].v < 0) continue;
    lua_pushnumber(L, F[i].v);
    lua_setfield(L, -2, F[i].k);
  }
  if (o->pause > 0) {
    lua_pushnumber(L, o->pause);
    lua_setfield(L, -2, "pause");
  }
  lua_pushnumber(L, now > o->at ? now - o->at : 0);
  lua_setfield(L, -2, "age");
}

/* See binding.h. */
void hyp_grant_read(lua_State *L, int idx, hyp_grant *g) {
  memset(g, 0, sizeof *g);
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER) { /* nil (and an error): the store could not be asked */
    g->failed = 1;
    return;
  }
  lua_Number w = lua_tonumber(L, idx);
  g->wait = w > 0 && w < 1e9 ? (double)w : 0;
  g->reserved = lua_toboolean(L, idx + 1);
  lua_Number n = lua_type(L, idx + 2) == LUA_TNUMBER ? lua_tonumber(L, idx + 2) : 0;
  g->fleet = n >= 1 && n < 1e6 ? (int)n : 0;
}

/* See binding.h. */
void hyp_store_acquire(lua_State *L, int client_idx, hyp_calludata *cu, const hyp_action *act, double now,
                       hyp_grant *g) {
  int top = lua_gettop(L);
  hyp_client_getuv(L, client_idx, ".store_acquire");
  lua_pushstring(L, cu->client->quota_key);
  lua_pushstring(L, cu->client->uid);
  hyp_obs_push(L, act->obs, now);
  lua_pushnumber(L, act->seconds);
  if (lua_pcall(L, 4, 3, 0) != 0) { /* acquire(key, uid, obs, max_wait) → wait, reserved, fleet */
    lua_pushnil(L);
    lua_pushnil(L);
  }
  hyp_grant_read(L, top + 1, g);
  lua_settop(L, top);
}

/* See binding.h. */
void hyp_cached_push(lua_State *L, const hyp_engine *E) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, E->token.access_token);
  lua_setfield(L, -2, "access_token");
  lua_pushnumber(L, E->token.expires_at);
  lua_setfield(L, -2, "expires_at");
  lua_pushnumber(L, E->token.lifetime);
  lua_setfield(L, -2, "lifetime");
  if (E->token.scope) {
    lua_pushstring(L, E->token.scope);
    lua_setfield(L, -2, "scope");
  }
}

/* See binding.h. */
void hyp_cache_set(lua_State *L, int client_idx, hyp_calludata *cu, const hyp_action *act) {
  int top = lua_gettop(L);
  hyp_client_getuv(L, client_idx, ".token_cache_set");
  lua_pushstring(L, cu->E->cache_key);
  hyp_cached_push(L, cu->E);
  if (act->ticket)
    lua_pushstring(L, act->ticket);
  else
    lua_pushnil(L);
  lua_pcall(L, 3, 0, 0); /* set(key, token, ticket): errors are ignored */
  lua_settop(L, top);
}

/* See binding.h. */
void hyp_cache_release(lua_State *L, int client_idx, hyp_calludata *cu, const hyp_action *act) {
  int top = lua_gettop(L);
  hyp_client_getuv(L, client_idx, ".token_cache_release");
  lua_pushstring(L, cu->E->cache_key);
  lua_pushstring(L, act->ticket);
  if (act->error)
    hyp_answer_fail(L, cu, act->error);
  else
    lua_pushnil(L);
  lua_pcall(L, 3, 0, 0); /* release(key, ticket, err): errors are ignored */
  lua_settop(L, top);
}

/* See binding.h. */
void hyp_run_hook(lua_State *L, int client_idx, hyp_calludata *cu, const hyp_action *act) {
  hyp_client_getuv(L, client_idx, act->type == HYP_ACT_ON_REQUEST ? ".on_request" : ".on_response");
  hyp_answer_hook_info(L, cu, act);
  lua_call(L, 1, 0);
}

/* See binding.h. */
int hyp_run_callback(lua_State *L, int client_idx, hyp_calludata *cu, const hyp_action *act,
                     hyp_input *in, hyp_cached *cached, hyp_grant *grant) {
  switch (act->type) {
  case HYP_ACT_CACHE_GET:
    in->cached = hyp_cache_get(L, client_idx, cu->E, cached) ? cached : NULL;
    return 9;
  case HYP_ACT_CACHE_SET:
    hyp_cache_set(L, client_idx, cu, act);
    return 0;
  case HYP_ACT_CACHE_RELEASE:
    hyp_cache_release(L, client_idx, cu, act);
    return 0;
  case HYP_ACT_ACQUIRE:
    hyp_store_acquire(L, client_idx, cu, act, in->now, grant);
    in->grant = grant;
    return 0;
  default:
    hyp_run_hook(L, client_idx, cu, act);
    return 0;
  }
}
