/*
 * binding/op.c — hypatos.Op: an operation of the operations table compiled
 * once (method, path, idempotence, body kind), so that a generated resource
 * method calls the core directly — client:call(op, id, …) — instead of
 * building option tables for client:request at every call.
 *
 *   local op = core.op("GET", "/users/{id}", true)         -- body: nil, "json" or "query"
 *   local user, meta = client:call(op, "6295dcd39db1ab740c3e296c")
 *
 * An Op holds no resource: a fixed-size struct in its userdata.
 */
#include "binding.h"

#include <string.h>

#define op_error(L, ...) hyp_misuse((L), "hypatos.op", __VA_ARGS__)

/* See binding.h. */
int hyp_op_args(lua_State *L, const hyp_op *op, int args, int *body) {
  int n = lua_gettop(L);
  int b = op->body ? args + op->nparams : 0;
  int last = args + op->nparams + (op->body ? 1 : 0); /* where call options would be */
  if (n > last || (n == last && !lua_isnil(L, last))) return 0;
  for (int i = 0; i < op->nparams; i++) {
    int t = lua_type(L, args + i);
    if (t != LUA_TSTRING && !(t == LUA_TNUMBER && lua_isinteger(L, args + i))) return 0;
  }
  if (b) {
    int t = lua_type(L, b);
    if (op->body == HYP_OP_JSON ? t != LUA_TTABLE : t != LUA_TTABLE && t != LUA_TNIL && t != LUA_TNONE) return 0;
    if (t != LUA_TTABLE) b = 0;
  }
  *body = b;
  return 1;
}

/** core.op(method, path, idempotent [, body]) → a hypatos.Op: body is nil
 * (none), "json" (a table sent as JSON) or "query" (a table of query
 * parameters). Raises on a method or path that cannot be sent. */
static int l_op(lua_State *L) {
  size_t mlen, plen;
  const char *method = luaL_checklstring(L, 1, &mlen);
  const char *path = luaL_checklstring(L, 2, &plen);
  luaL_checktype(L, 3, LUA_TBOOLEAN);
  const char *body = luaL_optstring(L, 4, NULL);
  hyp_op *op = HYP_NEWUSERDATA(L, sizeof *op);
  memset(op, 0, sizeof *op);
  luaL_setmetatable(L, HYP_OP_MT);
  if (mlen == 0 || mlen >= sizeof op->method || strlen(method) != mlen) op_error(L, "method \"%s\" is not valid", method);
  for (size_t i = 0; i < mlen; i++) {
    char c = method[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) op_error(L, "method \"%s\" is not valid", method);
    op->method[i] = (char)(c >= 'a' ? c - 'a' + 'A' : c);
  }
  if (plen == 0 || plen >= sizeof op->path || strlen(path) != plen || path[0] != '/')
    op_error(L, "path \"%s\" is not valid", path);
  memcpy(op->path, path, plen + 1);
  for (const char *p = path; (p = strchr(p, '{')); p++) op->nparams++;
  op->idempotent = lua_toboolean(L, 3);
  if (!body)
    op->body = HYP_OP_NONE;
  else if (strcmp(body, "json") == 0)
    op->body = HYP_OP_JSON;
  else if (strcmp(body, "query") == 0)
    op->body = HYP_OP_QUERY;
  else
    op_error(L, "body must be nil, \"json\" or \"query\", got \"%s\"", body);
  return 1;
}

/** tostring(op) → "hypatos.Op(GET /users/{id})". */
static int op_tostring(lua_State *L) {
  hyp_op *op = luaL_checkudata(L, 1, HYP_OP_MT);
  lua_pushfstring(L, "hypatos.Op(%s %s)", op->method, op->path);
  return 1;
}

/* See binding.h. */
int hyp_op_open(lua_State *L) {
  luaL_newmetatable(L, HYP_OP_MT);
  lua_pushcfunction(L, op_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, HYP_OP_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_op);
  lua_setfield(L, -2, "op");
  return 0;
}
