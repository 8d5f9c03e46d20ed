-- luacheck configuration (make lint)
std = "max"
max_line_length = 120
codes = true

files["spec/"] = { std = "+busted", max_line_length = 200 }
files["mock/lua/"] = { globals = { "ngx" } }
files["lua/hypatos/operations.lua"] = { max_line_length = 140 }
exclude_files = { "build/", "node_modules/", "tools/prism/" }
