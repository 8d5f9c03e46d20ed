--- tools/sanitize_env.lua — the process set-up of `make sanitize`, for the suite's lua5.4
-- (from tools/sanitize_helper.lua) and for every instrumented child lua5.4 (through
-- LUA_INIT_5_4, see spec/helpers.lua `lua_env`):
-- * LD_PRELOAD (the ASan/UBSan runtime) is kept away from the programs a lua5.4 starts
--   through a shell: curl, nginx, ls, luarocks, … are not instrumented, and curl hangs with
--   the runtime preloaded. A child that should be instrumented gets LD_PRELOAD back on its
--   own command line.
-- * hypatos.core stays mapped until the process exits: lua_close unloads the C modules it
--   loaded, and LeakSanitizer, which reports at exit, could then name no function of it.

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
-- the handles as a list, which its __gc closes); taking the module's handle off the list
-- leaves the library loaded.
local path = package.searchpath("hypatos.core", package.cpath)
if path and pcall(require, "hypatos.core") then
  local clibs = debug.getregistry()._CLIBS
  local handle = clibs and clibs[path]
  for i = #(clibs or {}), 1, -1 do
    if clibs[i] == handle then table.remove(clibs, i) end
  end
end
