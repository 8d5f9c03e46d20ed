--- tools/reference.lua — the README's reference table (method → HTTP operation
-- → scope) from lua/hypatos/operations.lua.
--   lua5.4 tools/reference.lua           print the table
--   lua5.4 tools/reference.lua --write   replace it in README.md (between the markers)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local ops = require "hypatos.operations"

local START, STOP = "<!-- reference:start -->", "<!-- reference:end -->"
local table_md = ops.markdown()

if arg[1] ~= "--write" then
  print(table_md)
  return
end
local f = assert(io.open("README.md", "rb"))
local text = f:read("a")
f:close()
local a, b = text:find(START, 1, true), text:find(STOP, 1, true)
assert(a and b, "README.md lacks the reference markers")
text = text:sub(1, a + #START) .. table_md .. "\n" .. text:sub(b)
f = assert(io.open("README.md", "wb"))
f:write(text)
f:close()
