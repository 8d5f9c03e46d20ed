-- mock/run.lua — run a command against a fresh local fake Hypatos server.
--
--   lua5.4 mock/run.lua [--tls] [--config JSON] [--nginx PATH] -- cmd args...
--   lua5.4 mock/run.lua [--tls] [--config JSON] --serve
--
-- Runs on Lua 5.4, Lua 5.1 and LuaJIT (luajit mock/run.lua -- luajit script.lua), with
-- luasocket and lua-cjson for that Lua (Debian: lua-socket, lua-cjson).
--
-- The command runs with HYPATOS_BASE_URL (http://127.0.0.1:PORT/v2), HYPATOS_CLIENT_ID,
-- HYPATOS_CLIENT_SECRET and HYPATOS_MOCK_URL (the control API base) in its environment,
-- plus HYPATOS_TLS_URL and HYPATOS_CA_FILE with --tls. The server is stopped afterwards
-- whatever happens (command failure, Ctrl-C: the shell's SIGINT goes to the command while
-- Lua waits), and run.lua exits with the command's status (128+N when killed by signal N).
-- --serve keeps the server in the foreground until Ctrl-C or end of stdin.

-- Make `require "mock.launcher"` work from any working directory.
local script_dir = (arg and arg[0] or ""):match("^(.*)/mock/[^/]*$")
if script_dir then
  package.path = script_dir .. "/?.lua;" .. package.path
end
package.path = "./?.lua;" .. package.path

local launcher = require "mock.launcher"
local cjson = require "cjson"

-- Print a message to stderr and exit with status 2 (usage errors).
local function die(msg)
  io.stderr:write("mock/run.lua: ", msg, "\n")
  os.exit(2)
end

-- Quote a string for /bin/sh.
local function sh(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

-- Parse the command line into options and the command to run.
local function parse(args)
  local opts, cmd = { tls = false }, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      cmd = {}
      for j = i + 1, #args do cmd[#cmd + 1] = args[j] end
      break
    elseif a == "--tls" then
      opts.tls = true
    elseif a == "--serve" then
      opts.serve = true
    elseif a == "--config" or a == "--nginx" then
      local v = args[i + 1] or die(a .. " needs a value")
      if a == "--config" then
        local ok, cfg = pcall(cjson.decode, v)
        if not ok or type(cfg) ~= "table" then die("--config must be a JSON object") end
        opts.config = cfg
      else
        opts.nginx = v
      end
      i = i + 1
    elseif a == "-h" or a == "--help" then
      print("usage: lua5.4 mock/run.lua [--tls] [--config JSON] [--nginx PATH] (--serve | -- cmd args...)")
      os.exit(0)
    else
      die("unknown argument " .. a .. " (the command goes after --)")
    end
    i = i + 1
  end
  if not opts.serve and (not cmd or #cmd == 0) then die("no command given (use -- cmd args... or --serve)") end
  return opts, cmd
end

-- Environment assignments for the command, as a shell prefix.
local function env_prefix(srv)
  local vars = {
    HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
    HYPATOS_CLIENT_SECRET = srv.client_secret, HYPATOS_MOCK_URL = srv.control_url,
    HYPATOS_TLS_URL = srv.tls_url, HYPATOS_CA_FILE = srv.ca_file,
  }
  local names = {}
  for k in pairs(vars) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. sh(vars[k]) end
  return "export " .. table.concat(parts, " ") .. "; "
end

-- Exit status of os.execute results (128 + signal number when killed by a signal). Lua 5.1
-- and LuaJIT return the wait status of the shell instead: exit code × 256, or the signal.
local function exit_code(ok, how, code)
  if type(ok) == "number" then
    if ok % 256 == 0 then return math.floor(ok / 256) end
    return 128 + ok % 128
  end
  if how == "signal" then return 128 + (code or 0) end
  if ok then return 0 end
  return code or 1
end

local opts, cmd = parse(arg)
local srv, err = launcher.start{ tls = opts.tls, config = opts.config, nginx = opts.nginx }
if not srv then
  io.stderr:write("mock/run.lua: ", err, "\n")
  os.exit(1)
end

local status
local ok, perr = pcall(function()
  if opts.serve then
    io.stdout:write("hypatos mock server running (pid ", srv.pid, ")\n",
      "  base URL     ", srv.url, "\n",
      srv.tls_url and ("  TLS URL      " .. srv.tls_url .. "  (CA file " .. srv.ca_file .. ")\n") or "",
      "  control URL  ", srv.control_url, "/_mock/...\n",
      "  client       ", srv.client_id, " / ", srv.client_secret, "\n",
      "Press Ctrl-C or Ctrl-D to stop.\n")
    io.stdout:flush()
    -- Block in a child: Ctrl-C or EOF ends it while Lua ignores SIGINT (system(3)).
    os.execute("cat >/dev/null")
    status = 0
  else
    local line = {}
    for i, a in ipairs(cmd) do line[i] = sh(a) end
    status = exit_code(os.execute(env_prefix(srv) .. table.concat(line, " ")))
  end
end)
srv:stop()
if not ok then
  io.stderr:write("mock/run.lua: ", tostring(perr), "\n")
  os.exit(1)
end
os.exit(status, true)
