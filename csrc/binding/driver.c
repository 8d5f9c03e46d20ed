/*
 * binding/driver.c — the drivers' loop, top-down: a driver steps the call
 * through the engine (engine.c), performs what it asks — a SEND with the
 * transport (transport/curl.c), a SLEEP, a callback — and ends with the
 * answer (answer.c).
 *
 * Two drivers run here:
 *   hyp_drive            the blocking driver of client:request, client:call
 *                        and client:token: every action performed in C
 *                        (libcurl, nanosleep);
 *   hyp_driver_run       the loop of Call:step / Call:advance (call.c): the
 *                        callback actions are performed here (step) or
 *                        handed out (advance); SEND and SLEEP go back to the
 *                        driver written in Lua.
 * The callback actions — the token cache's get, set and release, the shared
 * store's acquire, the on_request/on_response hooks — are the cases of one
 * switch (hyp_driver_callback). Everything a callback needs comes with the
 * driver context: the call, its client and the client's user-value table
 * (its Lua functions), pushed once per run. A failing cache or store is a
 * miss or a failed grant (protected calls); a hook's errors propagate.
 */
#include "binding.h"

#include <string.h>

/* See binding.h. */
void hyp_driver_init(hyp_driver *d, lua_State *L, int client_idx, hyp_calludata *cu, double now) {
  memset(d, 0, sizeof *d);
  d->L = L;
  d->cu = cu;
  d->cl = lua_touserdata(L, client_idx);
  d->now = now;
  lua_getuservalue(L, client_idx);
  d->uv = lua_gettop(L);
  d->in.now = now;
}

/* Pushes the client's Lua value k (its user-value table's field). */
static void push_uv(const hyp_driver *d, const char *k) { lua_getfield(d->L, d->uv, k); }

/* Steps the call once with d->in (cleared afterwards); raises "hypatos: …"
 * when the driver misused the call. A 2xx token answer's body (it held the
 * token) is wiped from cu->res once the engine has read it. */
static void step(hyp_driver *d, hyp_action *act) {
  hyp_calludata *cu = d->cu;
  if (d->live) d->in.now = d->now = hyp_now();
  if (d->in.result && cu->c.out.is_token) cu->token_answer = 1;
  const char *misuse = hyp_call_step(cu->E, &cu->c, &d->in, act);
  if (misuse) luaL_error(d->L, "hypatos: %s", misuse);
  if (cu->token_answer && act->type != HYP_ACT_ON_RESPONSE) {
    hyp_result *r = &cu->res;
    if (!r->failure && r->status >= 200 && r->status < 300) hyp_wipe(r->body.data, r->body.len);
    cu->token_answer = 0;
  }
  memset(&d->in, 0, sizeof d->in);
  d->in.now = d->now;
}

/* See binding.h. */
double hyp_driver_sleep(const hyp_driver *d, const hyp_action *act) {
  if (!(act->jitter > 0)) return act->seconds;
  lua_State *L = d->L;
  double u;
  if (d->cl->has_random) {
    push_uv(d, ".random");
    lua_call(L, 0, 1);
    u = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(u >= 0 && u < 1)) luaL_error(L, "hypatos: option \"random\" must return a number in [0, 1)");
  } else {
    u = hyp_random(&d->cl->rng);
  }
  return act->seconds + act->jitter * u;
}

/* See binding.h. */
void hyp_driver_push_fn(const hyp_driver *d, const hyp_action *act) {
  static const char *const FN[] = {
      [HYP_ACT_CACHE_GET] = ".token_cache_get",         [HYP_ACT_CACHE_SET] = ".token_cache_set",
      [HYP_ACT_CACHE_RELEASE] = ".token_cache_release", [HYP_ACT_ACQUIRE] = ".store_acquire",
      [HYP_ACT_ON_REQUEST] = ".on_request",             [HYP_ACT_ON_RESPONSE] = ".on_response"};
  push_uv(d, FN[act->type]);
}

/* CACHE_GET: get(key [, refused]) → answer, ticket, in protected mode (a
 * raising cache is a miss, and fails a shared store's breaker). The answer's
 * values stay on the stack until the step that reads them. */
static void cache_get(hyp_driver *d, const hyp_action *act) {
  lua_State *L = d->L;
  const hyp_engine *E = d->cu->E;
  hyp_driver_push_fn(d, act);
  lua_pushstring(L, E->cache_key);
  int nargs = 1;
  if (E->token.refused) {
    lua_pushstring(L, E->token.refused);
    nargs++;
  }
  int failed = lua_pcall(L, nargs, 2, 0) != 0;
  if (failed) {
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushnil(L);
  }
  int top = lua_gettop(L);
  int any = hyp_cached_read(L, top - 1, top, &d->cached);
  d->cached.failed = failed;
  d->in.cached = any || failed ? &d->cached : NULL;
}

/* ACQUIRE: acquire(quota key, uid, obs, max wait) → wait, reserved, fleet,
 * in protected mode (an error is a failed store: local pacing). */
static void acquire(hyp_driver *d, const hyp_action *act) {
  lua_State *L = d->L;
  int top = lua_gettop(L);
  hyp_driver_push_fn(d, act);
  lua_pushstring(L, d->cl->quota_key);
  lua_pushstring(L, d->cl->uid);
  hyp_obs_push(L, act->obs, d->now);
  lua_pushnumber(L, act->seconds);
  if (lua_pcall(L, 4, 3, 0) != 0) {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  hyp_grant_read(L, top + 1, &d->grant);
  lua_settop(L, top);
  d->in.grant = &d->grant;
}

/* See binding.h. */
void hyp_driver_callback(hyp_driver *d, const hyp_action *act) {
  lua_State *L = d->L;
  hyp_calludata *cu = d->cu;
  int top = lua_gettop(L);
  switch (act->type) {
  case HYP_ACT_CACHE_GET:
    cache_get(d, act);
    return; /* its values stay for the step */
  case HYP_ACT_ACQUIRE:
    acquire(d, act);
    return;
  case HYP_ACT_CACHE_SET: /* set(key, token, ticket): errors are ignored */
    hyp_driver_push_fn(d, act);
    lua_pushstring(L, cu->E->cache_key);
    hyp_cached_push(L, cu->E);
    if (act->ticket)
      lua_pushstring(L, act->ticket);
    else
      lua_pushnil(L);
    lua_pcall(L, 3, 0, 0);
    break;
  case HYP_ACT_CACHE_RELEASE: /* release(key, ticket, err): errors are ignored */
    hyp_driver_push_fn(d, act);
    lua_pushstring(L, cu->E->cache_key);
    lua_pushstring(L, act->ticket);
    if (act->error)
      hyp_answer_fail(L, cu, act->error);
    else
      lua_pushnil(L);
    lua_pcall(L, 3, 0, 0);
    break;
  default: /* ON_REQUEST, ON_RESPONSE: the hook's errors propagate */
    hyp_driver_push_fn(d, act);
    hyp_answer_hook_info(L, cu, act);
    lua_call(L, 1, 0);
  }
  lua_settop(L, top);
}

/* See binding.h. */
void hyp_driver_run(hyp_driver *d, int all, hyp_action *act) {
  int base = lua_gettop(d->L);
  for (;;) {
    step(d, act);
    lua_settop(d->L, base); /* what the last callback left for the step */
    if (all || act->type <= HYP_ACT_FAIL) return;
    hyp_driver_callback(d, act);
  }
}

/* ------------------------------------------------------- the blocking driver */

/* Progress bridge, installed on every transfer of a blocking call: calls the
 * Lua progress function at fn_idx (hyp_drive's frame) if there is one, and
 * aborts the transfer when the interpreter got SIGINT (see hyp_interrupted),
 * so Ctrl-C stops a long upload at once. Never raises through libcurl: an
 * error is left on the stack, the transfer aborted, and hyp_drive raises it
 * once libcurl has returned. */
typedef struct progress_ctx {
  lua_State *L;
  int fn_idx;              /* 0: no Lua function */
  int failed;              /* the Lua function raised */
  int interrupted;
} progress_ctx;

static int progress_bridge(void *ud, int64_t dlt, int64_t dln, int64_t ult, int64_t uln) {
  progress_ctx *p = ud;
  lua_State *L = p->L;
  if (p->failed || p->interrupted) return 1;
  if (hyp_interrupted(L)) {
    p->interrupted = 1;
    return 1;
  }
  if (!p->fn_idx) return 0;
  lua_pushvalue(L, p->fn_idx);
  lua_pushnumber(L, (lua_Number)dln);
  lua_pushnumber(L, (lua_Number)dlt);
  lua_pushnumber(L, (lua_Number)uln);
  lua_pushnumber(L, (lua_Number)ult);
  if (lua_pcall(L, 4, 0, 0) != 0) {
    p->failed = 1;
    return 1;
  }
  return 0;
}

static int stop_on_interrupt(void *ud) { return hyp_interrupted(ud); }

/* Performs a SEND with the client's libcurl transport (created on first use)
 * into cu->res; raises what the progress function raised, or on SIGINT. */
static void send_blocking(hyp_driver *d, const hyp_action *act, progress_ctx *p) {
  lua_State *L = d->L;
  hyp_client *cl = d->cl;
  if (!cl->T && !(cl->T = hyp_transport_new())) luaL_error(L, "hypatos: cannot create a libcurl handle");
  hyp_result *res = &d->cu->res;
  hyp_result_reset(res);
  p->fn_idx = d->cu->c.req.has_progress && !act->out->is_token && lua_isfunction(L, 2) ? 2 : 0;
  hyp_transport_perform(cl->T, act->out, &cl->E.cfg, progress_bridge, p, res);
  if (p->failed) lua_error(L); /* the progress function's error */
  if (p->interrupted) hyp_interrupt_error(L);
  d->in.result = res;
}

/* See binding.h. */
int hyp_drive(lua_State *L) {
  hyp_client *cl = lua_touserdata(L, 1);
  hyp_driver d;
  hyp_driver_init(&d, L, 1, &cl->call, hyp_now());
  d.live = 1;
  progress_ctx pctx = {L, 0, 0, 0};
  for (;;) {
    hyp_action act;
    hyp_driver_run(&d, 0, &act);
    switch (act.type) {
    case HYP_ACT_SEND:
      send_blocking(&d, &act, &pctx);
      break;
    case HYP_ACT_SLEEP:
      if (hyp_sleep_until(hyp_driver_sleep(&d, &act), stop_on_interrupt, L))
        return hyp_interrupt_error(L);
      break;
    case HYP_ACT_DONE:
      if (hyp_answer_done(L, &cl->call, &act, hyp_now()) == 1) { /* a body that should be JSON is not */
        lua_pushnil(L);
        lua_insert(L, -2);
      }
      return 2;
    default: /* HYP_ACT_FAIL */
      lua_pushnil(L);
      hyp_answer_fail(L, &cl->call, act.error);
      return 2;
    }
  }
}
