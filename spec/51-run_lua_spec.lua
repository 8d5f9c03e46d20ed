-- mock/run.lua (a command against a fresh local server) under every Lua the README names:
-- lua5.4, luajit and lua5.1. It needs luasocket and lua-cjson only; os.execute answers
-- differently in 5.1 and LuaJIT (the wait status instead of true, "exit", code).

-- Quotes a string for /bin/sh.
local function sh(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs `<lua> mock/run.lua -- <cmd…>` with the checkout's modules for that Lua on the
-- paths; returns the exit code and the output (stdout and stderr).
local function run(lua, cmd)
  local cpath = lua == "lua5.4" and "build/5.4/?.so;;" or "build/luajit/?.so;;"
  local words = {}
  for i, w in ipairs(cmd) do words[i] = sh(w) end
  local p = io.popen(("env -i PATH=%s LUA_PATH=%s LUA_CPATH=%s %s mock/run.lua -- %s 2>&1"):format(
    sh(os.getenv("PATH")), sh("lua/?.lua;lua/?/init.lua;;"), sh(cpath), lua, table.concat(words, " ")))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

describe("mock/run.lua", function()
  for _, lua in ipairs({ "lua5.4", "luajit", "lua5.1" }) do
    it("runs under " .. lua .. ": the server is up for the command, its exit status passes through", function()
      local code, out = run(lua, { "sh", "-c",
        'curl -sf "$HYPATOS_MOCK_URL/_mock/health" >/dev/null && echo "up at $HYPATOS_BASE_URL" && exit 3' })
      assert.equal(3, code, out)
      assert.matches("^up at http://127%.0%.0%.1:%d+/v2\n$", out)
      code, out = run(lua, { "sh", "-c", "kill -TERM $$" })
      assert.equal(128 + 15, code, out)
      code, out = run(lua, { "true" })
      assert.equal(0, code, out)
    end)
  end

  it("runs an example under luajit as the README prints it", function()
    local code, out = run("luajit", { "luajit", "examples/quickstart.lua" })
    assert.equal(0, code, out)
    assert.matches("\n%d+ active users\n", out)
  end)
end)
