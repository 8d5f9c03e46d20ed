/*
 * fuzz/lua_harness.c — libFuzzer harness for the Lua-level targets: one Lua
 * 5.4 state per process with hypatos.core (the binding, engine and transport
 * objects built with ASan + UBSan and coverage, linked in and preloaded) and
 * the pure-Lua modules from lua/. The target script (HYP_FUZZ_SCRIPT, a path
 * from the repository root, which is where a target runs) returns a function
 * that takes the input as a string; it raises only when an invariant fails
 * (documented errors are caught in the script), and the harness then aborts.
 *
 * libFuzzer sees the C coverage of the binding; for the Lua code (the HTTP
 * parser in http1.lua, filename.lua) a line hook maps (chunk, previous
 * line, line) onto libFuzzer's extra counters, so new Lua paths count too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef HYP_FUZZ_SCRIPT
#error "build with -DHYP_FUZZ_SCRIPT=\"fuzz/lua/<target>.lua\""
#endif

int luaopen_hypatos_core(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define COUNTERS (1u << 16)
__attribute__((section("__libfuzzer_extra_counters"), used)) uint8_t hyp_lua_counters[COUNTERS];

static lua_State *LS;
static int target_ref = LUA_NOREF;
static uintptr_t prev_loc;

/* Line hook: one counter per (chunk, previous line, line). */
static void line_hook(lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar)) return;
  uintptr_t loc = ((uintptr_t)ar->source >> 3) * 2654435761u + (uintptr_t)ar->currentline * 40503u;
  hyp_lua_counters[(loc ^ prev_loc) % COUNTERS]++;
  prev_loc = loc >> 1;
}

/* Error handler: the message with a traceback. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

static void die(const char *what) {
  fprintf(stderr, "lua_harness (%s): %s\n", HYP_FUZZ_SCRIPT, what);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  LS = luaL_newstate();
  if (!LS) die("cannot create a Lua state");
  luaL_openlibs(LS);
  if (luaL_dostring(LS, "package.path = 'lua/?.lua;lua/?/init.lua;fuzz/lua/lib/?.lua;' .. package.path"))
    die(lua_tostring(LS, -1));
  luaL_getsubtable(LS, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(LS, luaopen_hypatos_core);
  lua_setfield(LS, -2, "hypatos.core");
  lua_pop(LS, 1);
  lua_pushcfunction(LS, traceback);
  if (luaL_loadfile(LS, HYP_FUZZ_SCRIPT) || lua_pcall(LS, 0, 1, -2)) die(lua_tostring(LS, -1));
  if (!lua_isfunction(LS, -1)) die("the target script must return a function");
  target_ref = luaL_ref(LS, LUA_REGISTRYINDEX);
  lua_pop(LS, 1);
  lua_gc(LS, LUA_GCCOLLECT, 0);
  lua_sethook(LS, line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_pushcfunction(LS, traceback);
  lua_rawgeti(LS, LUA_REGISTRYINDEX, target_ref);
  lua_pushlstring(LS, (const char *)data, size);
  prev_loc = 0;
  if (lua_pcall(LS, 1, 0, -3)) die(lua_tostring(LS, -1));
  lua_pop(LS, 1);
  lua_gc(LS, LUA_GCCOLLECT, 0); /* every input leaves nothing behind (finalizers run here) */
  return 0;
}
