-- luacheck configuration (make lint)
std = "max"
max_line_length = 120
codes = true

files["spec/"] = { std = "+busted", max_line_length = 200 }
files["mock/lua/"] = { globals = { "ngx" } }
-- the OpenResty driver and the driver choice read nginx's `ngx` (absent outside nginx)
files["lua/hypatos/ngx.lua"] = { read_globals = { "ngx" } }
files["lua/hypatos/cosocket.lua"] = { read_globals = { "ngx" } }
files["lua/hypatos/init.lua"] = { read_globals = { "ngx" } }
files["lua/hypatos/map.lua"] = { read_globals = { "ngx" } }
files["lua/hypatos/redis.lua"] = { read_globals = { "ngx" } }
files["examples/openresty/"] = { globals = { "ngx" } }
files["lua/hypatos/operations.lua"] = { max_line_length = 140 }
exclude_files = { "build/", "node_modules/", "tools/prism/" }
-- stubs for LDoc (doc/) and LuaLS (types/): declarations only, their arguments are never used
files["doc/"] = { unused_args = false, ignore = { "211", "241" } }
files["types/"] = { unused_args = false, max_line_length = false, ignore = { "211", "241" } }
-- the command, its launcher of the local server and mock/run.lua run on Lua 5.1 and LuaJIT too
-- (the rock installs the command for 5.1): only what every Lua has (std "min"; 5.3+ functions
-- through hypatos.cli.compat or behind a check); tools/lua51check.sh checks the syntax
files["lua/hypatos/cli/"] = { std = "min" }
files["bin/hypatos"] = { std = "min" }
files["mock/run.lua"] = { std = "min" }
files["mock/launcher.lua"] = { std = "min" }
