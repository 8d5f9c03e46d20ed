/*
 * binding/multi.c — the hypatos.Multi userdata: many attempts at once on one thread,
 * through a libcurl multi handle. It is the transport of client:map in plain
 * Lua (lua/hypatos/map.lua): each task's call steps the engine as usual, and
 * when the engine says "send", the task hands its call to the multi and
 * yields; multi:wait() runs every transfer and returns the calls whose
 * attempt has ended, with the answer already in the call (feed it back with
 * call:step(now, true)).
 *
 *   local m = core.multi()
 *   m:add(call [, progress])      -- start the attempt of call's last "send" action
 *   local done, raised = m:wait(0.1) -- {call, …}: attempts that ended (maybe none);
 *                                 -- raised[call]: what its progress function raised
 *   m:remove(call)                -- abort one (its temporary output file is removed)
 *   m:close()                     -- abort all; idempotent, also __gc/__close
 *
 * Connections, DNS and TLS sessions are shared by every transfer of the
 * multi. The same transport code as blocking calls sets each attempt up
 * (transport.c), so every rule holds: streamed files, fresh connections for
 * non-idempotent requests, verified TLS, no redirects. Callbacks never raise
 * through libcurl; wait() raises "hypatos: interrupted" on SIGINT.
 */
#include "binding.h"

#include "../transport/multi.h"
#include <stdlib.h>
#include <string.h>

typedef struct transfer {
  hyp_transport *T;
  hyp_calludata *cu;       /* NULL when the slot is free */
  int call_ref;            /* registry reference pinning the call */
  int progress_ref;        /* registry reference to a progress function, or LUA_NOREF */
  int raised_ref;          /* registry reference to what the progress function raised, or LUA_NOREF */
  int ended;               /* begin failed: the answer is ready without libcurl */
  int progress_failed;
  struct multi_ud *owner;
} transfer;

typedef struct multi_ud {
  hyp_multi *m;
  transfer **xs;           /* slots (each allocated once: libcurl and transport.c keep pointers) */
  int n;                   /* slots in xs */
  int active;              /* transfers in flight or ended but not yet returned */
  lua_State *L;            /* during wait(): for progress functions */
  int closed;
} multi_ud;

/* Checks argument idx is an open multi. */
static multi_ud *check_multi(lua_State *L, int idx) {
  multi_ud *mu = luaL_checkudata(L, idx, HYP_MULTI_MT);
  if (mu->closed) luaL_error(L, "hypatos.Multi is closed");
  return mu;
}

/* Progress of one transfer: calls its Lua function (never raising through
 * libcurl) and aborts on SIGINT. */
static int on_progress(void *ud, int64_t dlt, int64_t dln, int64_t ult, int64_t uln) {
  transfer *x = ud;
  lua_State *L = x->owner->L;
  if (!L) return 0;
  if (hyp_interrupted(L)) return 1;
  if (x->progress_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, x->progress_ref);
  lua_pushnumber(L, (lua_Number)dln);
  lua_pushnumber(L, (lua_Number)dlt);
  lua_pushnumber(L, (lua_Number)uln);
  lua_pushnumber(L, (lua_Number)ult);
  if (lua_pcall(L, 4, 0, 0) != 0) {
    x->raised_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* wait() hands it to the caller */
    x->progress_failed = 1;
    return 1;
  }
  return 0;
}

/* Frees a slot's references (the transport is kept for the next transfer). */
static void release(lua_State *L, multi_ud *mu, transfer *x) {
  luaL_unref(L, LUA_REGISTRYINDEX, x->call_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->progress_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->raised_ref);
  x->call_ref = x->progress_ref = x->raised_ref = LUA_NOREF;
  if (x->cu) x->cu->in_multi = 0;
  x->cu = NULL;
  x->ended = x->progress_failed = 0;
  mu->active--;
}

/* The slot of the call at idx, or NULL. */
static transfer *find(multi_ud *mu, hyp_calludata *cu) {
  for (int i = 0; i < mu->n; i++)
    if (mu->xs[i]->cu == cu) return mu->xs[i];
  return NULL;
}

/* A free slot (growing the table); raises on ENOMEM. */
static transfer *free_slot(lua_State *L, multi_ud *mu) {
  for (int i = 0; i < mu->n; i++)
    if (!mu->xs[i]->cu) return mu->xs[i];
  transfer **xs = realloc(mu->xs, (size_t)(mu->n + 1) * sizeof *xs);
  if (!xs) luaL_error(L, "hypatos: out of memory");
  mu->xs = xs;
  transfer *x = calloc(1, sizeof *x);
  if (!x) luaL_error(L, "hypatos: out of memory");
  x->call_ref = x->progress_ref = x->raised_ref = LUA_NOREF;
  x->owner = mu;
  xs[mu->n++] = x;
  return x;
}

/* See binding.h. */
void hyp_multi_start(lua_State *L, int multi_idx, int call_idx, hyp_calludata *cu, int progress_idx) {
  multi_ud *mu = check_multi(L, multi_idx);
  if (find(mu, cu)) luaL_error(L, "hypatos.Multi: the call is already being sent");
  transfer *x = free_slot(L, mu);
  if (!x->T && !(x->T = hyp_transport_new())) luaL_error(L, "hypatos: cannot create a libcurl handle");
  lua_pushvalue(L, call_idx);
  x->call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (progress_idx) {
    lua_pushvalue(L, progress_idx);
    x->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  x->cu = cu;
  cu->in_multi = 1;
  mu->active++;
  hyp_result *res = &cu->res;
  hyp_result_reset(res);
  if (hyp_transport_begin(x->T, &cu->c.out, &cu->client->E.cfg, on_progress, x, res) != 0) {
    x->ended = 1; /* e.g. the body file cannot be opened: nothing was sent */
    return;
  }
  if (hyp_multi_add(mu->m, x->T, x) != 0) {
    hyp_transport_end(x->T, HYP_CURL_FAILED_INIT, res);
    x->ended = 1;
  }
}

/** multi:add(call [, progress]) — starts the attempt of the call's last
 * "send" action. Raises if the call has no attempt to send or is already in. */
static int multi_add(lua_State *L) {
  check_multi(L, 1);
  hyp_calludata *cu = luaL_checkudata(L, 2, HYP_CALL_MT);
  if (cu->closed) return luaL_error(L, "hypatos.Call is closed");
  if (!cu->sending) return luaL_error(L, "hypatos.Multi: the call has no attempt to send");
  hyp_multi_start(L, 1, 2, cu, lua_isfunction(L, 3) ? 3 : 0);
  return 0;
}

/** multi:run(call, now [, progress]) → "send" | "sleep", seconds | "done",
 * value, meta | "fail", err: steps the call (as call:step: the token cache,
 * the store and the hooks inside) and, when the engine asks to send, starts
 * the attempt in this multi. After wait() has returned the call, run it
 * again: the answer is its input. What client:map drives its tasks with: no
 * action tables, one call per step. */
static int multi_run(lua_State *L) {
  check_multi(L, 1);
  lua_settop(L, 4);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_replace(L, 1);
  lua_replace(L, 2); /* call, multi, now, progress */
  return hyp_call_run(L);
}

/* Pushes the call of x onto the result list at list_idx (and what its progress
 * function raised into the table at list_idx + 1) and frees the slot. */
static void deliver(lua_State *L, multi_ud *mu, transfer *x, int list_idx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, x->call_ref);
  if (x->raised_ref != LUA_NOREF) {
    lua_pushvalue(L, -1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->raised_ref);
    lua_rawset(L, list_idx + 1);
  }
  lua_rawseti(L, list_idx, (lua_Integer)lua_rawlen(L, list_idx) + 1);
  release(L, mu, x);
}

/** multi:wait([timeout]) → {call, …}, {[call] = raised}: runs the transfers
 * for up to timeout seconds (default 0: no waiting) and returns the calls
 * whose attempt ended, and what the progress function of any of them raised
 * (that attempt was aborted: the driver re-raises it). Raises "hypatos:
 * interrupted" on SIGINT (the transfers stay; close them). */
static int multi_wait(lua_State *L) {
  multi_ud *mu = check_multi(L, 1);
  double timeout = luaL_optnumber(L, 2, 0);
  if (!(timeout >= 0)) timeout = 0;
  if (timeout > 86400) timeout = 86400;
  lua_settop(L, 2);
  lua_newtable(L);
  int list = lua_gettop(L);
  lua_newtable(L); /* list + 1: what progress functions raised */
  for (int i = 0; i < mu->n; i++)
    if (mu->xs[i]->cu && mu->xs[i]->ended) deliver(L, mu, mu->xs[i], list);
  if (lua_rawlen(L, list) > 0 || mu->active == 0) return 2;
  mu->L = L;
  double until = hyp_now() + timeout;
  for (;;) {
    hyp_multi_perform(mu->m);
    int code;
    transfer *x;
    while ((x = hyp_multi_done(mu->m, &code))) {
      if (!x->cu) continue;
      hyp_transport_end(x->T, code, &x->cu->res);
      deliver(L, mu, x, list);
    }
    if (hyp_interrupted(L)) {
      mu->L = NULL;
      return hyp_interrupt_error(L);
    }
    double left = until - hyp_now();
    if (lua_rawlen(L, list) > 0 || left <= 0 || mu->active == 0) break;
    int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1; /* slices: SIGINT is seen at once */
    hyp_multi_poll(mu->m, ms);
  }
  mu->L = NULL;
  return 2;
}

/* Aborts transfer x: its temporary output file is removed by transport end. */
static void abort_one(lua_State *L, multi_ud *mu, transfer *x) {
  if (!x->ended) {
    hyp_multi_remove(mu->m, x->T);
    hyp_transport_end(x->T, HYP_CURL_ABORTED, &x->cu->res);
  }
  release(L, mu, x);
}

/** multi:remove(call) — aborts the call's attempt if it is in the multi. */
static int multi_remove(lua_State *L) {
  multi_ud *mu = check_multi(L, 1);
  hyp_calludata *cu = luaL_checkudata(L, 2, HYP_CALL_MT);
  transfer *x = find(mu, cu);
  if (x) abort_one(L, mu, x);
  return 0;
}

/** multi:count() → the number of attempts in the multi. */
static int multi_count(lua_State *L) {
  lua_pushinteger(L, check_multi(L, 1)->active);
  return 1;
}

/** multi:close() — aborts every transfer, frees transports and the multi;
 * idempotent. The one destructor: also __gc and __close. */
static int multi_gc(lua_State *L) {
  multi_ud *mu = luaL_checkudata(L, 1, HYP_MULTI_MT);
  if (mu->closed) return 0;
  mu->closed = 1;
  for (int i = 0; i < mu->n; i++) {
    if (mu->xs[i]->cu) abort_one(L, mu, mu->xs[i]);
    hyp_transport_free(mu->xs[i]->T);
    free(mu->xs[i]);
  }
  free(mu->xs);
  mu->xs = NULL;
  mu->n = 0;
  hyp_multi_free(mu->m);
  mu->m = NULL;
  return 0;
}

/** core.multi() → a new hypatos.Multi. */
static int multi_new(lua_State *L) {
  multi_ud *mu = HYP_NEWUSERDATA(L, sizeof *mu);
  memset(mu, 0, sizeof *mu);
  luaL_setmetatable(L, HYP_MULTI_MT);
  mu->m = hyp_multi_new();
  if (!mu->m) {
    mu->closed = 1;
    return luaL_error(L, "hypatos: cannot create a libcurl multi handle");
  }
  return 1;
}

/* See binding.h. */
int hyp_multi_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"add", multi_add},     {"run", multi_run},   {"wait", multi_wait},
                                     {"remove", multi_remove}, {"count", multi_count},
                                     {"close", multi_gc},     {NULL, NULL}};
  luaL_newmetatable(L, HYP_MULTI_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, multi_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, multi_gc);
  lua_setfield(L, -2, "__close");
  lua_pushliteral(L, HYP_MULTI_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, multi_new);
  lua_setfield(L, -2, "multi");
  return 0;
}
