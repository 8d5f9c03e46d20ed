rockspec_format = "3.0"
package = "hypatos"
version = "scm-1"
source = {
  url = "git+https://github.com/hypatos-lua/hypatos.git",
  branch = "main",
}
description = {
  summary = "Client for the Hypatos document-processing REST API (v2)",
  detailed = [[
A C core on libcurl (OAuth 2.0 client credentials with a shared token cache,
keep-alive transport, retries with backoff, rate-limit pacing) and a Lua
layer with a method for every API operation and pagination iterators.
Lua 5.4 and LuaJIT 2.1 (OpenResty); with --lua-version=5.1 the module is
built on the Lua 5.1 C API, which LuaJIT keeps: it runs in LuaJIT and lua5.1.
  ]],
  homepage = "https://github.com/hypatos-lua/hypatos",
  license = "MIT",
  labels = { "http", "rest", "api", "libcurl", "oauth2" },
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1.0",
  "argparse >= 0.7", -- the hypatos command (Debian: lua-argparse)
  "luasocket",       -- the local server's launcher (hypatos serve, hypatos.testing; Debian: lua-socket)
}
external_dependencies = {
  CURL = { library = "curl" },
  CRYPTO = { library = "crypto" }, -- OpenSSL's libcrypto: HMAC-SHA-256 for the token cache keys
  HIREDIS = { library = "hiredis" }, -- core.redis: the shared store's Redis connection (Debian: libhiredis-dev)
}
build = {
  type = "make",
  build_target = "lib",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_INCDIR = "$(CURL_INCDIR)",
    CURL_LIBDIR = "$(CURL_LIBDIR)",
    CRYPTO_INCDIR = "$(CRYPTO_INCDIR)",
    CRYPTO_LIBDIR = "$(CRYPTO_LIBDIR)",
    HIREDIS_INCDIR = "$(HIREDIS_INCDIR)",
    HIREDIS_LIBDIR = "$(HIREDIS_LIBDIR)",
  },
  install_target = "install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    LUA_INCDIR = "$(LUA_INCDIR)", -- installs the object built for this Lua, never another's
    INST_BINDIR = "$(BINDIR)",    -- the command also as hypatos-<Lua version> (hypatos-5.4, hypatos-5.1)
    INST_LUA = "$(LUA)",
  },
  install = {
    -- the command line (luarocks wraps it for the tree's Lua); in a tree with rocks for two
    -- Lua versions the last install owns `hypatos`, and `hypatos-5.4` / `hypatos-5.1` stay
    bin = { hypatos = "bin/hypatos" },
  },
}
test = {
  type = "command",
  command = "make test",
}
