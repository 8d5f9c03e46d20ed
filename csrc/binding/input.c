/*
 * binding/input.c — what the engine takes in from Lua, as its plain values:
 * the result table of an attempt a Lua driver performed (an answer, or a
 * failure by name or libcurl code), a token cache's answer (a token, a
 * ticket, a wait, a denial) and the shared store's grant (wait, reserved,
 * fleet). answer.c goes the other way.
 */
#include "binding.h"

#include <stdio.h>
#include <string.h>

/* Lua-side failure names → the engine's failure classes. */
static const struct {
  const char *name;
  int failure;
} FAILURES[] = {{"resolve", HYP_F_RESOLVE},   {"connect", HYP_F_CONNECT}, {"tls", HYP_F_TLS},
                {"tls_verify", HYP_F_TLS_VERIFY}, {"timeout", HYP_F_TIMEOUT}, {"send", HYP_F_SEND},
                {"recv", HYP_F_RECV},         {"closed", HYP_F_CLOSED},   {"partial", HYP_F_PARTIAL},
                {"too_large", HYP_F_TOO_LARGE}, {"io", HYP_F_IO},         {NULL, 0}};

/* Reads the status and headers fields of the result table at idx into res
 * (a failure may carry them: what arrived before it); the headers as a table,
 * or as a header_block (see call.c). */
static void read_status_line(lua_State *L, int idx, int keys, hyp_result *res) {
  if (hyp_getk(L, idx, keys, HYP_K_STATUS) == LUA_TNUMBER) {
    lua_Number status = lua_tonumber(L, -1);
    if (!(status >= 100 && status <= 999)) luaL_error(L, "hypatos.Call: a result status must be 100 to 999");
    res->status = (long)status;
  }
  lua_pop(L, 1);
  if (hyp_getk(L, idx, keys, HYP_K_HEADERS) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t nl, vl;
      const char *n = lua_tolstring(L, -2, &nl), *v = lua_tolstring(L, -1, &vl);
      if (lua_type(L, -2) == LUA_TSTRING && v) hyp_header_add(&res->headers, n, nl, v, vl);
      lua_pop(L, 1);
    }
  } else {
    /* "name\0value\0" for each field: no table to walk; core.http_head's as it is */
    size_t n;
    const char *p;
    int t = hyp_getk(L, idx, keys, HYP_K_HEADER_BLOCK);
    if (hyp_header_block(L, -1, &p, &n)) {
      hyp_buf_add(&res->headers, p, n);
    } else if (t == LUA_TSTRING) {
      p = lua_tolstring(L, -1, &n);
      for (const char *end = p + n; p < end;) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        if (v >= end) break;
        size_t vl = strlen(v);
        hyp_header_add(&res->headers, p, nl, v, vl);
        p = v + vl + 1;
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* See binding.h. */
void hyp_result_read(lua_State *L, int idx, hyp_result *res) {
  hyp_result_reset(res);
  luaL_checktype(L, idx, LUA_TTABLE);
  idx = lua_absindex(L, idx);
  int keys = hyp_keys_push(L); /* removed before each return */
  int t = hyp_getk(L, idx, keys, HYP_K_ERROR);
  if (t != LUA_TNIL) {
    const char *name = NULL;
    if (t == LUA_TNUMBER) {
      lua_Number code = lua_tonumber(L, -1);
      if (!(code >= 1 && code < 1000)) luaL_error(L, "hypatos.Call: a numeric failure must be a libcurl code");
      res->code = (int)code;
      res->failure = hyp_curl_failure(res->code);
    } else {
      name = luaL_checkstring(L, -1);
      for (int i = 0; FAILURES[i].name && !res->failure; i++)
        if (strcmp(FAILURES[i].name, name) == 0) res->failure = FAILURES[i].failure;
      if (!res->failure) luaL_error(L, "hypatos.Call: unknown failure \"%s\"", name);
      res->code = hyp_curl_code(res->failure);
    }
    lua_getfield(L, idx, "sent");
    res->sent = lua_toboolean(L, -1);
    read_status_line(L, idx, keys, res); /* a status that had arrived before the failure, if any */
    lua_getfield(L, idx, "message");
    if (lua_isstring(L, -1))
      snprintf(res->msgbuf, sizeof res->msgbuf, "%s", lua_tostring(L, -1));
    else if (res->code > 0)
      snprintf(res->msgbuf, sizeof res->msgbuf, "%s", hyp_curl_strerror(res->code));
    else
      snprintf(res->msgbuf, sizeof res->msgbuf, "%s failure", name ? name : "transport");
    res->message = res->msgbuf;
    lua_pop(L, 4);
    return;
  }
  lua_pop(L, 1);
  read_status_line(L, idx, keys, res);
  if (res->status == 0) luaL_error(L, "hypatos.Call: a result needs a numeric status or an error");
  if (hyp_getk(L, idx, keys, HYP_K_BODY) == LUA_TSTRING) {
    size_t n;
    const char *b = lua_tolstring(L, -1, &n);
    hyp_buf_add(&res->body, b, n);
  }
  lua_pop(L, 1);
  hyp_getk(L, idx, keys, HYP_K_ELAPSED);
  res->elapsed = (double)lua_tonumber(L, -1);
  hyp_getk(L, idx, keys, HYP_K_BODY_IN_FILE); /* the driver wrote a 2xx body to act.output */
  res->body_in_file = lua_toboolean(L, -1);
  lua_pop(L, 3);
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
