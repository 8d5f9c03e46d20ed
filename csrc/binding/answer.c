/*
 * binding/answer.c — what a call came to, as Lua values: the value and meta of
 * a success (JSON decoded unless raw; true for an empty body), the error value
 * of a failure (title/detail from the API's error body, a 422 validation list
 * summarised; secrets scrubbed, see scrub.c), the token table of client:token()
 * and the info tables the on_request/on_response hooks see (never the
 * Authorization header). The engine decides; this file only builds values.
 */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Pushes a one-line summary of a 422 validation list at idx:
 * "body.name: field required; body.code: …" (at most 10 items). */
static void push_validation(lua_State *L, int idx) {
  hyp_buf b = {NULL, 0, 0};
  size_t n = lua_rawlen(L, idx);
  for (size_t i = 1; i <= n && i <= 10; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) == LUA_TTABLE) {
      if (b.len) hyp_buf_adds(&b, "; ");
      lua_getfield(L, -1, "loc");
      if (lua_type(L, -1) == LUA_TTABLE) {
        size_t m = lua_rawlen(L, -1);
        for (size_t j = 1; j <= m; j++) {
          lua_rawgeti(L, -1, (int)j);
          const char *part = lua_tostring(L, -1);
          if (j > 1) hyp_buf_addc(&b, '.');
          hyp_buf_adds(&b, part ? part : "?");
          lua_pop(L, 1);
        }
        hyp_buf_adds(&b, ": ");
      }
      lua_pop(L, 1);
      lua_getfield(L, -1, "msg");
      hyp_buf_adds(&b, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "invalid");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  hyp_buf_free(&b);
}

/* Fills the fields every error of a call carries from e. */
static void common(hyp_errinfo *info, const hyp_error *e) {
  info->outcome = e->outcome;
  info->status = e->status;
  info->retryable = e->retryable;
  info->retry_after = e->retry_after;
  info->code = e->code;
  info->attempts = e->attempts;
  info->method = e->method;
  info->url = e->url;
}

/* Pushes the error of an HTTP answer: e->message is the prefix of the
 * message, the body's title/detail (when JSON) complete it. */
static void push_answer_error(lua_State *L, const hyp_error *e) {
  const hyp_result *in = e->answer;
  int top = lua_gettop(L);
  hyp_errinfo info;
  hyp_errinfo_init(&info, e->kind, NULL);
  common(&info, e);
  hyp_headers_push(L, &in->headers);
  info.headers_idx = lua_gettop(L);
  char msg[600];
  const char *detail_text = NULL;
  if (e->keep_body && in->body.len) {
    const char *ct = hyp_header_get(&in->headers, "content-type");
    if (hyp_is_json_type(ct) && hyp_json_decode(L, in->body.data, in->body.len)) {
      info.body_idx = lua_gettop(L);
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, info.body_idx, "title");
        info.title = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        lua_getfield(L, info.body_idx, "detail");
        if (lua_type(L, -1) == LUA_TSTRING) {
          info.detail = detail_text = lua_tostring(L, -1);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
          /* a validation list: [{loc=[…], msg, type}] → "body.name: field required; …" */
          info.detail_idx = lua_gettop(L);
          push_validation(L, info.detail_idx);
          detail_text = lua_tostring(L, -1);
        }
      }
    } else {
      if (hyp_is_json_type(ct)) lua_pop(L, 1); /* decode message */
      size_t n = in->body.len < 65536 ? in->body.len : 65536;
      lua_pushlstring(L, in->body.data, n);
      info.body_idx = lua_gettop(L);
    }
  }
  const char *prefix = e->message;
  if (in->failure) /* a failure after a status line: the message is complete */
    snprintf(msg, sizeof msg, "%s", prefix);
  else if (info.title && detail_text)
    snprintf(msg, sizeof msg, "%s%s: %s", prefix, info.title, detail_text);
  else if (info.title || detail_text)
    snprintf(msg, sizeof msg, "%s%s", prefix, info.title ? info.title : detail_text);
  else
    snprintf(msg, sizeof msg, "%sHTTP %ld", prefix, in->status);
  info.message = msg;
  hyp_push_error(L, &info);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* See binding.h. */
void hyp_answer_fail(lua_State *L, hyp_calludata *cu, const hyp_error *e) {
  if (e->answer) {
    push_answer_error(L, e);
  } else {
    hyp_errinfo info;
    hyp_errinfo_init(&info, e->kind, e->message);
    common(&info, e);
    hyp_push_error(L, &info);
  }
  hyp_scrub(L, -1, cu->E);
}

/* See binding.h. */
int hyp_answer_done(lua_State *L, hyp_calludata *cu, const hyp_action *act, double now) {
  const hyp_call *c = &cu->c;
  if (c->token_only) {
    hyp_token_push(L, cu->E, now);
    lua_pushnil(L); /* no meta for token-only calls */
    return 2;
  }
  const hyp_result *in = act->in;
  const char *ct = hyp_header_get(&in->headers, "content-type");
  if (in->body_in_file || in->body.len == 0) {
    lua_pushboolean(L, 1);
  } else if (!c->req.raw && hyp_is_json_type(ct)) {
    if (!hyp_json_decode(L, in->body.data, in->body.len)) {
      char msg[300];
      snprintf(msg, sizeof msg, "response body is not valid JSON: %s", lua_tostring(L, -1));
      lua_pop(L, 1);
      hyp_errinfo e;
      hyp_errinfo_init(&e, "decode", msg);
      e.outcome = "done"; /* a 2xx answer: the request was carried out */
      e.status = in->status;
      e.attempts = c->attempts;
      e.method = c->req.method;
      e.url = c->req.url.data;
      size_t n = in->body.len < 65536 ? in->body.len : 65536;
      lua_pushlstring(L, in->body.data, n);
      e.body_idx = lua_gettop(L);
      hyp_headers_push(L, &in->headers);
      e.headers_idx = lua_gettop(L);
      int top = e.body_idx - 1;
      hyp_push_error(L, &e);
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      hyp_scrub(L, -1, cu->E);
      return 1;
    }
  } else {
    lua_pushlstring(L, in->body.data, in->body.len);
  }
  hyp_meta_push(L, in, &cu->E->rate, c->attempts, now - c->started, now);
  return 2;
}

/* See binding.h. */
void hyp_answer_hook_info(lua_State *L, const hyp_calludata *cu, const hyp_action *act) {
  const hyp_call *c = &cu->c;
  const hyp_outgoing *o = act->out;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, o->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, o->url);
  lua_setfield(L, -2, "url");
  lua_pushinteger(L, o->is_token ? c->token_attempts : c->attempts);
  lua_setfield(L, -2, "attempt");
  lua_pushboolean(L, o->is_token);
  lua_setfield(L, -2, "token_request");
  if (act->type == HYP_ACT_ON_REQUEST) {
    hyp_lines_push(L, o->headers, o->nheaders, 1);
    lua_setfield(L, -2, "headers");
  } else {
    const hyp_result *in = act->in;
    if (in->failure) {
      lua_pushstring(L, in->message ? in->message : "transport failure");
      lua_setfield(L, -2, "error");
      lua_pushinteger(L, in->code);
      lua_setfield(L, -2, "code");
    } else {
      lua_pushinteger(L, in->status);
      lua_setfield(L, -2, "status");
      hyp_headers_push(L, &in->headers);
      lua_setfield(L, -2, "headers");
    }
    lua_pushnumber(L, in->elapsed);
    lua_setfield(L, -2, "elapsed");
  }
  hyp_scrub(L, -1, cu->E);
}

/* __tostring of a token table: never shows the token itself. */
static int token_tostring(lua_State *L) {
  lua_getfield(L, 1, "scope");
  lua_getfield(L, 1, "expires_in");
  double e = (double)lua_tonumber(L, -1); /* the caller may have changed it: no cast */
  char life[32];
  if (isfinite(e) && fabs(e) < 1e15)
    snprintf(life, sizeof life, "%.0f", trunc(e));
  else
    snprintf(life, sizeof life, "%s", isnan(e) ? "?" : e > 0 ? "inf" : "-inf");
  lua_pushfstring(L, "hypatos.Token(scope=\"%s\", expires_in=%s, access_token=<redacted>)",
                  lua_tostring(L, -2) ? lua_tostring(L, -2) : "", life);
  return 1;
}

/* See binding.h. */
void hyp_token_push(lua_State *L, const hyp_engine *E, double now) {
  const hyp_token *t = &E->token;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, t->access_token);
  lua_setfield(L, -2, "access_token");
  lua_pushliteral(L, "Bearer");
  lua_setfield(L, -2, "token_type");
  lua_pushnumber(L, t->expires_at);
  lua_setfield(L, -2, "expires_at");
  lua_pushnumber(L, t->expires_at - now);
  lua_setfield(L, -2, "expires_in");
  const char *scope = t->scope ? t->scope : "";
  lua_pushstring(L, scope);
  lua_setfield(L, -2, "scope");
  lua_newtable(L);
  int n = 0;
  for (const char *p = scope; *p;) {
    size_t len = strcspn(p, " ");
    if (len) {
      lua_pushlstring(L, p, len);
      lua_rawseti(L, -2, ++n);
    }
    p += len;
    while (*p == ' ') p++;
  }
  lua_setfield(L, -2, "scopes");
  if (luaL_newmetatable(L, HYP_TOKEN_MT)) {
    lua_pushcfunction(L, token_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
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
