/*
 * binding/errors.c — the one constructor of hypatos error values.
 *
 * An error is a plain table with metatable "hypatos.Error": fields kind,
 * status, title, detail, message, body, headers, retryable, retry_after,
 * attempts, elapsed, method, url and code (design.md §2). tostring(err) is one line:
 *   hypatos: http 404: Document does not exist (GET https://…/documents/x)
 *   hypatos: network: token request failed: … (POST https://…/auth/token, 5 attempts in 2.6 s)
 * Nothing secret is ever put in: callers pass no request headers and no
 * token-response bodies, and the engine scrubs what a server echoes
 * (scrub.c).
 */
#include "binding.h"

#include "../engine/urls.h"

#include <stdio.h>
#include <string.h>

/* Raises "<who>: <formatted message>" — every misuse error (unknown option,
 * wrong type) goes through here, as every error value goes through
 * hyp_push_error. */
int hyp_misuse(lua_State *L, const char *who, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return luaL_error(L, "%s: %s", who, msg);
}

/* Fills e with a kind and message and marks every optional field absent. */
void hyp_errinfo_init(hyp_errinfo *e, const char *kind, const char *message) {
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->message = message;
  e->retry_after = -1;
  e->elapsed = -1;
  e->code = -1;
  e->outcome = "not_sent";
}

static void setstr(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void setidx(lua_State *L, const char *k, int idx) {
  if (!idx) return;
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, k);
}

/* Pushes a new error value built from e. Indexes in e must be absolute. */
void hyp_push_error(lua_State *L, const hyp_errinfo *e) {
  lua_createtable(L, 0, 14);
  setstr(L, "kind", e->kind);
  setstr(L, "message", e->message ? e->message : e->kind);
  if (e->status) {
    lua_pushinteger(L, (lua_Integer)e->status);
    lua_setfield(L, -2, "status");
  }
  setstr(L, "title", e->title);
  if (e->detail_idx)
    setidx(L, "detail", e->detail_idx);
  else
    setstr(L, "detail", e->detail);
  setidx(L, "body", e->body_idx);
  setidx(L, "headers", e->headers_idx);
  lua_pushboolean(L, e->retryable);
  lua_setfield(L, -2, "retryable");
  if (e->retry_after >= 0) {
    lua_pushnumber(L, e->retry_after);
    lua_setfield(L, -2, "retry_after");
  }
  lua_pushinteger(L, e->attempts);
  lua_setfield(L, -2, "attempts");
  if (e->elapsed >= 0) {
    lua_pushnumber(L, e->elapsed);
    lua_setfield(L, -2, "elapsed");
  }
  setstr(L, "method", e->method);
  setstr(L, "url", e->url);
  setstr(L, "outcome", e->outcome);
  if (e->code >= 0) {
    lua_pushinteger(L, e->code);
    lua_setfield(L, -2, "code");
  }
  luaL_getmetatable(L, HYP_ERROR_MT);
  lua_setmetatable(L, -2);
}

/* Reads string field k of the table at idx, or NULL. */
static const char *field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the string stays alive: it is held by the table */
  return s;
}

/* __tostring: "hypatos: <kind>[ <status>]: <message> (<METHOD> <url>[, N attempts[ in T]])",
 * the URL as scheme, host and path (hyp_url_shown: no query; err.url keeps it); T
 * is err.elapsed as "850 ms" or "2.6 s". */
static int error_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  const char *url = field(L, 1, "url");
  char *shown = NULL;
  if (url) { /* made before the buffer, which must own the top of the stack */
    shown = HYP_NEWUSERDATA(L, strlen(url) + 1);
    hyp_url_shown(url, shown, strlen(url) + 1);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "hypatos: ");
  const char *kind = field(L, 1, "kind");
  luaL_addstring(&b, kind ? kind : "error");
  lua_getfield(L, 1, "status");
  if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) >= 0 && lua_tonumber(L, -1) < 1e6) {
    lua_pushfstring(L, " %d", (int)lua_tonumber(L, -1)); /* checked first: err is the caller's table */
    lua_remove(L, -2);
    luaL_addvalue(&b);
  } else {
    lua_pop(L, 1);
  }
  const char *msg = field(L, 1, "message");
  if (msg) {
    luaL_addstring(&b, ": ");
    luaL_addstring(&b, msg);
  }
  const char *method = field(L, 1, "method");
  lua_getfield(L, 1, "attempts");
  lua_Number an = lua_tonumber(L, -1);
  int attempts = an >= 0 && an < 1e6 ? (int)an : 0;
  lua_pop(L, 1);
  lua_getfield(L, 1, "elapsed");
  lua_Number elapsed = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  lua_pop(L, 1);
  if (method && shown) {
    lua_pushfstring(L, " (%s %s", method, shown);
    luaL_addvalue(&b);
    if (attempts > 1) {
      char took[48] = "";
      if (elapsed >= 0 && elapsed < 1) /* (checked first: err is the caller's table) */
        snprintf(took, sizeof took, " in %d ms", (int)(elapsed * 1000 + 0.5));
      else if (elapsed >= 1 && elapsed < 1e9)
        snprintf(took, sizeof took, " in %.1f s", (double)elapsed);
      lua_pushfstring(L, ", %d attempts%s", attempts, took);
      luaL_addvalue(&b);
    }
    luaL_addstring(&b, ")");
  }
  luaL_pushresult(&b);
  return 1;
}

/** core.error(fields) → err: the same constructor for errors made in Lua.
 * fields needs kind and message (strings); the table itself becomes the
 * error (retryable defaults to false, attempts to 0, outcome to "not_sent"). */
static int l_error(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (hyp_getfield(L, 1, "kind") != LUA_TSTRING) luaL_error(L, "hypatos.error: kind must be a string");
  if (hyp_getfield(L, 1, "message") != LUA_TSTRING)
    luaL_error(L, "hypatos.error: message must be a string");
  if (hyp_getfield(L, 1, "retryable") == LUA_TNIL) {
    lua_pushboolean(L, 0);
    lua_setfield(L, 1, "retryable");
  }
  if (hyp_getfield(L, 1, "attempts") == LUA_TNIL) {
    lua_pushinteger(L, 0);
    lua_setfield(L, 1, "attempts");
  }
  if (hyp_getfield(L, 1, "outcome") == LUA_TNIL) {
    lua_pushliteral(L, "not_sent");
    lua_setfield(L, 1, "outcome");
  }
  lua_settop(L, 1);
  luaL_getmetatable(L, HYP_ERROR_MT);
  lua_setmetatable(L, 1);
  return 1;
}

/** core.is_error(v) → true when v is a hypatos error value. */
static int l_is_error(lua_State *L) {
  int is = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, HYP_ERROR_MT);
    is = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, is);
  return 1;
}

/* Registers the "hypatos.Error" metatable; adds error and is_error to the
 * module table on the top of the stack. */
int hyp_errors_open(lua_State *L) {
  lua_pushcfunction(L, l_error);
  lua_setfield(L, -2, "error");
  lua_pushcfunction(L, l_is_error);
  lua_setfield(L, -2, "is_error");
  luaL_newmetatable(L, HYP_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, HYP_ERROR_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  return 0;
}
