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
