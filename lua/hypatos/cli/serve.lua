--- `serve [--port N] [--quota Q/W] [--latency S] [--processing-time S]`: runs the
-- local fake Hypatos server (the one the library's suite uses: nginx + ngx_lua,
-- see `hypatos.testing`) in the foreground. Prints the three environment
-- variables to export on stdout, then waits for Ctrl-C (SIGINT), SIGTERM or
-- SIGHUP and stops the nginx it started, by pid, removing its directory.
-- @internal hypatos.cli.serve

local testing = require "hypatos.testing"
local core = require "hypatos.core"

local M = {}

--- Quotes a value for a POSIX shell.
-- @param s
-- @treturn string
local function sh(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs the command.
-- @tparam table ctx
-- @treturn integer exit status
function M.run(ctx)
  local a = ctx.args
  local opts = { port = a.port, latency = a.latency > 0 and a.latency or nil, processing_time = a.processing_time }
  if a.quota then opts.quota, opts.window = a.quota.quota, a.quota.window end
  local srv, err = testing.start(opts)
  if not srv then ctx:err(err) return 1 end
  local ok, perr = pcall(function()
    local env = testing.env(srv)
    for _, k in ipairs({ "HYPATOS_BASE_URL", "HYPATOS_CLIENT_ID", "HYPATOS_CLIENT_SECRET" }) do
      ctx.stdout:write("export ", k, "=", sh(env[k]), "\n")
    end
    ctx.stdout:flush()
    ctx.stderr:write(("hypatos: local server on 127.0.0.1:%d (nginx pid %d); control API %s/_mock/…; "
      .. "Ctrl-C stops it\n"):format(srv.port, srv.pid, srv.control_url))
    ctx.stderr:flush()
    return core.wait_signal()
  end)
  srv:stop()
  if not ok then ctx:err(perr) return 1 end
  ctx.stderr:write("hypatos: local server stopped (", tostring(perr), ")\n")
  return 0
end

return M
