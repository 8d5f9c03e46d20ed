--- tools/sanitize_env.lua — the process set-up of `make sanitize`, for the suite's lua5.4
-- (from tools/sanitize_helper.lua) and for every instrumented child lua5.4 (through
-- LUA_INIT_5_4, see spec/helpers.lua `lua_env`):
-- * LD_PRELOAD (the ASan/UBSan runtime) is kept away from the programs a lua5.4 starts
--   through a shell: curl, nginx, ls, luarocks, … are not instrumented, and curl hangs with
--   the runtime preloaded. A child that should be instrumented gets LD_PRELOAD back on its
--   own command line.
-- * every C module stays mapped until the process exits (hypatos.core, and the libraries it
--   pulls in: libcurl, GnuTLS, …): lua_close unloads the C modules it loaded, and
--   LeakSanitizer, which reports at exit, could then name no function of them; worse, a library
--   with thread-local storage (GnuTLS, p11-kit) unloaded leaves a stale entry that LeakSanitizer's
--   thread scan may follow and crash on ("Tracer caught signal 11", exit 134, depending on the
--   memory layout), e.g. in the `hypatos` command, which loads the checkout's module itself.

local execute, popen = os.execute, io.popen
local UNSET = "unset LD_PRELOAD; "

-- luacheck: push ignore 122 (replacing fields of os and io is the point)
os.execute = function(cmd, ...)
  if cmd == nil then return execute() end
  return execute(UNSET .. cmd, ...)
end
io.popen = function(cmd, ...)
  return popen(UNSET .. cmd, ...)
end
-- luacheck: pop

-- Lua 5.4 keeps the handles of loaded C libraries in registry._CLIBS ({[path] = handle} and
-- the handles as a list), whose __gc closes them when the state closes; a __gc that does
-- nothing leaves every library loaded, whichever path it came from and whenever it was loaded.
local clibs = debug.getregistry()._CLIBS
local mt = type(clibs) == "table" and getmetatable(clibs)
if type(mt) == "table" and mt.__gc then
  mt.__gc = function() end
end
