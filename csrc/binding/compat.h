/*
 * compat.h — the few Lua C API differences between Lua 5.4, LuaJIT 2.1 and
 * PUC-Rio Lua 5.1 headers that hypatos.core uses. Everything else is common to both.
 * Included through hypatos.h only.
 */
#ifndef HYP_COMPAT_H
#define HYP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502

/* LuaJIT has luaL_setfuncs, luaL_newlib, luaL_testudata, luaL_setmetatable
 * and lua_tointegerx, but not the functions below. */

#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline int hyp_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex hyp_absindex

/* A userdata's "user value" is its environment table in 5.1. */
#define lua_setuservalue(L, i) lua_setfenv((L), (i))
#define lua_getuservalue(L, i) lua_getfenv((L), (i))

/* In 5.1 every number is a double: "integer" means an integral value. */
static inline int hyp_isinteger(lua_State *L, int i) {
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  lua_Number n = lua_tonumber(L, i);
  return n == (lua_Number)(lua_Integer)n;
}
#define lua_isinteger hyp_isinteger

#define HYP_NEWUSERDATA(L, sz) lua_newuserdata((L), (sz))

#ifndef luaL_newlib
/* PUC-Rio Lua 5.1 headers (luarocks --lua-version=5.1): LuaJIT's 5.2 extras
 * are missing. A module built this way loads in lua5.1 and in LuaJIT (which
 * keeps the 5.1 ABI), so these are static helpers, never LuaJIT symbols. */
static inline void hyp_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs hyp_setfuncs
#define luaL_newlib(L, l) (lua_newtable(L), hyp_setfuncs((L), (l), 0))
static inline void hyp_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#define luaL_setmetatable hyp_setmetatable
#endif

#else /* Lua 5.2 and later */

#if LUA_VERSION_NUM >= 504
#define HYP_NEWUSERDATA(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define HYP_NEWUSERDATA(L, sz) lua_newuserdata((L), (sz))
#endif

#endif

#if LUA_VERSION_NUM < 503
/* lua_getfield returns the type from 5.3 on; this wrapper gives that everywhere. */
static inline int hyp_getfield(lua_State *L, int i, const char *k) {
  lua_getfield(L, i, k);
  return lua_type(L, -1);
}
static inline int hyp_rawgeti(lua_State *L, int i, lua_Integer n) {
  lua_rawgeti(L, i, (int)n);
  return lua_type(L, -1);
}
#else
#define hyp_getfield lua_getfield
#define hyp_rawgeti lua_rawgeti
#endif

#endif
