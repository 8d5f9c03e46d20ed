--- bench/proc.lua — what the benchmark child processes (bench/hypatos_files.lua,
-- bench/hypatos_map.lua) measure about themselves: a monotonic clock and their memory
-- from /proc (Linux). Loaded as `bench.proc` (the children run from the repository root
-- with ./?.lua on LUA_PATH, as `make bench` starts them).

local M = {}

do
  local ok, system = pcall(require, "system")
  --- Monotonic seconds (luasystem; luasocket's wall clock as a fallback).
  M.monotime = ok and system.monotime or require("socket").gettime
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
