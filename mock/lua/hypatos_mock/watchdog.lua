-- hypatos_mock.watchdog — stops the server when the process that started it is gone
-- (e.g. a test run killed with SIGKILL): once a second the worker checks /proc/<owner>;
-- when the owner has vanished it removes the prefix directory and asks the nginx master
-- to quit, so nothing is left behind.

local ngx = ngx
local io, os, find, match, tonumber = io, os, string.find, string.match, tonumber

local M = {}

local fired = false

-- True when process `pid` exists and is not a zombie (Linux /proc).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local line = f:read("*l")
  f:close()
  local st = line and match(line, "%) (%a)")
  return st ~= nil and st ~= "Z" and st ~= "X"
end

-- Pid of the nginx master (ngx.process when available, else our parent from /proc).
local function master_pid()
  local ok, process = pcall(require, "ngx.process")
  if ok and process.get_master_pid then
    local pid = process.get_master_pid()
    if pid then return pid end
  end
  local f = io.open("/proc/self/stat", "r")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return tonumber(line and match(line, "%) %a (%d+)"))
end

-- Timer callback: shut down once the owner is gone.
local function check(premature, owner, prefix)
  if premature or fired or alive(owner) then return end
  fired = true
  ngx.log(ngx.NOTICE, "hypatos mock: owner process ", owner, " is gone, shutting down")
  -- Only ever remove a directory that looks like one the launcher made.
  if type(prefix) == "string" and find(prefix, "/hypatos%-mock%-[%w]+/?$") and not find(prefix, "'", 1, true) then
    os.execute("rm -rf '" .. prefix .. "'")
  end
  local pid = master_pid()
  if pid then os.execute("kill -QUIT " .. pid) end
end

--- Start watching `owner_pid` (no-op when absent or when /proc is unusable).
function M.start(owner_pid, prefix)
  owner_pid = tonumber(owner_pid)
  if not owner_pid or not alive("self") or not alive(owner_pid) then return end
  local ok, err = ngx.timer.every(1, check, owner_pid, prefix)
  if not ok then ngx.log(ngx.WARN, "hypatos mock: watchdog not started: ", err) end
end

return M
