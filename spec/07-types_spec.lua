-- spec/07-types_spec.lua — types/hypatos.d.lua (the Lua Language Server definitions) is the
-- output of tools/types.lua for the current operations table and doc/core.lua, loads as Lua,
-- and declares every resource method a client has at run time, with every option; and the
-- reference's generated "Resource methods" topic has every method.
local ops = require "hypatos.operations"
local hypatos = require "hypatos"
local types_tool = dofile("tools/types.lua")
local docref = dofile("tools/docref.lua")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local committed = read(types_tool.OUTPUT)

--- Whether the definitions declare `function <Class var>:<name>(`.
local function declares(resource, name)
  local var = types_tool.class_of(resource):gsub("^hypatos%.", "")
  return committed:find("\nfunction " .. var .. ":" .. name .. "(", 1, true) ~= nil
end

describe("types/hypatos.d.lua", function()
  it("is what tools/types.lua generates (run `make types` after a change)", function()
    local n = 0
    for path, text in pairs(types_tool.files()) do
      n = n + 1
      assert.is_true(read(path) == text, path .. " is stale: run `make types` and commit it")
    end
    assert.equal(4, n)
  end)

  it("loads and runs as Lua, each file returning its module's functions", function()
    local modules = { ["types/hypatos.d.lua"] = { "new", "error", "is_error", "now" },
      ["types/hypatos.filename.d.lua"] = { "safe", "encode", "decode" },
      ["types/hypatos.ngx.d.lua"] = { "token_cache", "inside", "store" },
      ["types/hypatos.redis.d.lua"] = { "store", "parse_url" } }
    for path, names in pairs(modules) do
      local chunk, err = loadfile(path)
      assert.is_nil(err)
      assert.is_function(chunk)
      local ok, mod = pcall(chunk)
      assert.is_true(ok, tostring(mod))
      assert.is_table(mod)
      for _, name in ipairs(names) do assert.is_function(mod[name], path .. ": " .. name) end
    end
  end)

  it("declares every function of the modules users require (hypatos.filename, hypatos.ngx, hypatos.redis)", function()
    for _, name in ipairs{ "filename", "ngx", "redis" } do
      local text = read("types/hypatos." .. name .. ".d.lua")
      local real = dofile("lua/hypatos/" .. name .. ".lua")
      for k, v in pairs(real) do
        if type(v) == "function" then
          assert.is_truthy(text:find("\nfunction [%w_]+%." .. k .. "%("), "hypatos." .. name .. "." .. k)
        end
      end
    end
  end)

  it("starts with the LuaLS meta marker for require \"hypatos\"", function()
    assert.equal("---@meta hypatos\n", committed:sub(1, #"---@meta hypatos\n"))
  end)

  it("declares every method of the operations table", function()
    for _, o in ipairs(ops) do
      if o.resource == "client" then
        assert.is_truthy(committed:find("\nfunction Client:" .. o.name .. "(", 1, true), o.call)
      else
        assert.is_true(declares(o.resource, o.name), o.call)
        if o.paginated ~= nil then
          assert.is_true(declares(o.resource, "pages"), o.resource .. ":pages")
          assert.is_true(declares(o.resource, "each"), o.resource .. ":each")
        end
      end
    end
  end)

  it("declares every method a client's resources have at run time", function()
    local client = hypatos.new{ client_id = "id", client_secret = "secret", base_url = "http://127.0.0.1:9/v2" }
    finally(function() client:close() end)
    local checked = 0
    local function check(resource, obj)
      local known = {}
      for _, o in ipairs(ops.of(resource)) do known[o.name] = true end
      for name, v in pairs(getmetatable(obj).__index) do
        -- verbs a record type lacks raise at run time and are deliberately not declared
        local lacking = resource:match("^enrichment%.") and not known[name]
          and (name == "upsert" or name == "patch" or name == "delete")
        if type(v) == "function" and name:sub(1, 1) ~= "_" and not lacking then
          checked = checked + 1
          assert.is_true(declares(resource, name), resource .. ":" .. name)
        end
      end
    end
    for field in pairs(hypatos.resources) do
      if field == "enrichment" then
        for name, obj in pairs(client.enrichment) do check("enrichment." .. name, obj) end
      else
        check(field, client[field])
        assert.is_truthy(committed:find("\n---@field " .. field .. " hypatos%.%u"), "Client field " .. field)
      end
    end
    assert.is_true(checked > 60)
  end)

  it("types every option of hypatos.new", function()
    local class = committed:match("\n%-%-%-@class hypatos%.Options\n(.-)\n\n")
    assert.is_string(class)
    -- every option the C accepts: an unknown option raises, naming it; a known one does not
    for name in class:gmatch("%-%-%-@field ([%w_]+)%?") do
      local ok, res = pcall(hypatos.new, { client_id = "id", client_secret = "secret", [name] = {} })
      if ok then
        res:close()   -- `scope = {}` is a valid (empty) list
      else
        assert.is_nil(tostring(res):find("unknown option", 1, true), name .. ": " .. tostring(res))
      end
    end
    local ok, err = pcall(hypatos.new, { client_id = "id", client_secret = "secret", no_such_option = 1 })
    assert.is_false(ok)
    assert.matches("unknown option", tostring(err))
  end)
end)

describe("the examples and the README", function()
  it("call only resource methods the definitions declare (what LuaLS would flag)", function()
    local texts = { read("README.md") }
    local p = io.popen("find examples -name '*.lua' | sort")
    for path in p:lines() do texts[#texts + 1] = read(path) end
    p:close()
    assert.is_true(#texts > 3)
    local fields = {}
    for field in pairs(hypatos.resources) do fields[field] = true end
    local seen = 0
    for _, text in ipairs(texts) do
      for typ, method in text:gmatch("enrichment%.([%a_]+):([%a_]+)%s*[({]") do
        seen = seen + 1
        assert.is_true(declares("enrichment." .. typ, method), "enrichment." .. typ .. ":" .. method)
      end
      for before, field, method in text:gmatch("(.)([%a_]+):([%a_]+)%s*[({]") do
        if before == "." and fields[field] and field ~= "enrichment" then
          seen = seen + 1
          -- "x.enrichment.projects:upsert" is an enrichment type, checked above
          if not declares(field, method) then
            assert.is_truthy(text:find("enrichment%." .. field .. ":" .. method),
              field .. ":" .. method .. " is not declared in types/hypatos.d.lua")
          end
        end
      end
    end
    assert.is_true(seen > 20)
  end)
end)

describe("the reference's Resource methods topic (tools/docref.lua)", function()
  it("has a heading for every method of the operations table", function()
    local text = docref.render()
    for _, o in ipairs(ops) do
      local self_name = o.resource == "client" and "client" or o.resource:match("([^.]+)$")
      local heading = ("\n### %s:%s"):format(self_name, docref.signature(o.name, o.args, o.resource))
      assert.is_truthy(text:find(heading, 1, true), o.call)
      assert.is_truthy(text:find("`" .. o.method .. " " .. o.path .. "`", 1, true), o.call)
    end
  end)
end)
