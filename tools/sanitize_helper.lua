--- tools/sanitize_helper.lua — busted helper (`--helper`) for `make sanitize`.
-- The suite runs in lua5.4 with the ASan/UBSan runtime preloaded (LD_PRELOAD, set by
-- tools/test.sh) and loads the instrumented hypatos.core from $HYPATOS_BUILD. This helper
-- * keeps LD_PRELOAD away from the processes the specs start through a shell (curl, nginx,
--   openssl, luarocks, …): they are not instrumented, and curl hangs with the runtime
--   preloaded. A child lua5.4 that loads the instrumented module gets the runtime back from
--   spec/helpers.lua (`helpers.lua_env`);
-- * refuses to run when the module on package.cpath is not the instrumented one, or when
--   the runtime is not in the process, so a wrong path cannot pass silently.

local build = assert(os.getenv("HYPATOS_BUILD"), "HYPATOS_BUILD is not set (run make sanitize)")
assert(os.getenv("HYPATOS_PRELOAD"), "HYPATOS_PRELOAD is not set (run make sanitize)")

local execute, popen = os.execute, io.popen
local UNSET = "unset LD_PRELOAD; "

-- luacheck: push ignore 122 (setting read-only fields of os and io is the point)
os.execute = function(cmd, ...)
  if cmd == nil then return execute() end
  return execute(UNSET .. cmd, ...)
end
io.popen = function(cmd, ...)
  return popen(UNSET .. cmd, ...)
end
-- luacheck: pop

local want = build .. "/hypatos/core.so"
local found = package.searchpath("hypatos.core", package.cpath)
assert(found == want, ("hypatos.core resolves to %s, not the instrumented %s"):format(tostring(found), want))
require "hypatos.core"
local runtime, module = false, false
for line in io.lines("/proc/self/maps") do
  if line:find("libasan", 1, true) then runtime = true end
  if line:find(want, 1, true) then module = true end
end
assert(runtime, "the AddressSanitizer runtime is not loaded (LD_PRELOAD)")
assert(module, want .. " is not mapped after require")
