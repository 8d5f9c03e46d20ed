--- tools/sanitize_helper.lua — busted helper (`--helper`) for `make sanitize`.
-- The suite runs in lua5.4 with the ASan/UBSan runtime preloaded (LD_PRELOAD, set by
-- tools/test.sh) and loads the instrumented hypatos.core from $HYPATOS_BUILD. This helper
-- * keeps LD_PRELOAD away from the processes the specs start through a shell (see
--   tools/sanitize_env.lua). A child lua5.4 that loads the instrumented module gets the
--   runtime back from spec/helpers.lua (`helpers.lua_env`);
-- * refuses to run when the module on package.cpath is not the instrumented one, or when
--   the runtime is not in the process, so a wrong path cannot pass silently.

local build = assert(os.getenv("HYPATOS_BUILD"), "HYPATOS_BUILD is not set (run make sanitize)")
assert(os.getenv("HYPATOS_PRELOAD"), "HYPATOS_PRELOAD is not set (run make sanitize)")

dofile("tools/sanitize_env.lua")

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
