--- bench/proc.lua — what the benchmark child processes (bench/hypatos_files.lua, hypatos_get.lua, luacurl_get.lua,
-- bench/hypatos_map.lua) measure about themselves: a monotonic clock and their memory
-- from /proc (Linux). Loaded as `bench.proc` (the children run from the repository root
-- with ./?.lua on LUA_PATH, as `make bench` starts them).

local M = {}

do
  local ok, system = pcall(require, "system")
  --- Monotonic seconds (luasystem; luasocket's wall clock as a fallback).
  M.monotime = ok and system.monotime or require("socket").gettime
end

local ticks
--- User and system CPU seconds of this process so far, from /proc/self/stat (in clock ticks:
-- a split of os.clock()'s total); nil where /proc is missing.
-- @treturn number|nil user seconds
-- @treturn number|nil system seconds
function M.user_sys()
  if not ticks then
    local p = io.popen("getconf CLK_TCK 2>/dev/null")
    ticks = p and tonumber(p:read("*l") or "") or 100
    if p then p:close() end
  end
  local f = io.open("/proc/self/stat", "rb")
  if not f then return nil end
  local rest = f:read("*a"):match("%) (.*)$")
  f:close()
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  return tonumber(fields[12]) / ticks, tonumber(fields[13]) / ticks
end

--- VmRSS and VmHWM of this process in KiB; nil when /proc/self/status cannot be read.
-- @treturn integer|nil VmRSS
-- @treturn integer|nil VmHWM
function M.rss()
  local f = io.open("/proc/self/status", "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

--- Resets VmHWM to the current VmRSS.
-- @treturn boolean false when the kernel does not allow it
function M.reset_hwm()
  local f = io.open("/proc/self/clear_refs", "wb")
  if not f then return false end
  local ok = f:write("5")
  ok = f:close() and ok
  return ok and true or false
end

return M
