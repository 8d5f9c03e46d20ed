--- A token cache in files, for programs that run again and again (the `hypatos`
-- command, cron jobs): the token outlives the process, so a run does not cost a
-- token request while the last one's token is good.
--
--     local client = require("hypatos").new{ token_cache = require("hypatos.tokenfile").cache() }
--
-- One file per credentials, named by the client's cache key (an HMAC of the
-- client id, secret, token URL and scope: other credentials never find it), in
-- a directory of the user's own: `$XDG_CACHE_HOME/hypatos`, else
-- `~/.cache/hypatos` (made with mode 0700). Each file is written whole and
-- renamed into place (`core.tmpfile`), mode 0600: it holds a secret. A token the
-- API refused is removed. A file that cannot be read or written is no error:
-- the client fetches a token as without a cache. Many processes may share the
-- directory; the newest token wins (no lock: use `hypatos.redis` for a fleet).
-- @module hypatos.tokenfile

local core = require "hypatos.core"

local M = {}

--- The default directory, or nil when neither `$XDG_CACHE_HOME` nor `$HOME` is set.
-- @treturn string|nil
function M.default_dir()
  local xdg = os.getenv("XDG_CACHE_HOME")
  if xdg and xdg:sub(1, 1) == "/" then return xdg .. "/hypatos" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.cache/hypatos" end
  return nil
end

--- Quotes a string for /bin/sh.
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- A token cache in the directory `dir` (default `default_dir()`).
-- @tparam[opt] table opts `dir`
-- @treturn table `{get = fn(key, refused), set = fn(key, token)}`
function M.cache(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("hypatos.tokenfile.cache: options table expected", 2) end
  for k in pairs(opts) do
    if k ~= "dir" then error(('hypatos.tokenfile.cache: unknown option "%s"'):format(tostring(k)), 2) end
  end
  if opts.dir ~= nil and type(opts.dir) ~= "string" then
    error('hypatos.tokenfile.cache: option "dir" must be a string', 2)
  end
  local dir = opts.dir or M.default_dir()
  local made = false

  --- The file of a key (nil when there is no directory or the key is not a client's).
  local function path(key)
    if not dir or not key:match("^hypatos%-token:v1:%x+$") then return nil end
    return dir .. "/" .. key:gsub(":", "-") .. ".json"
  end

  return {
    --- The token in the key's file, unless it is missing, expired or the refused one
    -- (which is removed).
    -- @tparam string key the client's cache key
    -- @tparam[opt] string refused a token the API refused
    -- @treturn table|nil `{access_token, expires_at, lifetime, scope}`
    get = function(key, refused)
      local p = path(key)
      local f = p and io.open(p, "rb")
      if not f then return nil end
      local text = f:read("*a") -- "*": Lua 5.1 knows no other spelling
      f:close()
      local ok, t = pcall(core.json_decode, text or "")
      if not ok or type(t) ~= "table" then return nil end
      if refused and t.access_token == refused then
        os.remove(p)
        return nil
      end
      return t
    end,
    --- Writes the token to the key's file (0600, whole, renamed into place).
    -- @tparam string key the client's cache key
    -- @tparam table token `{access_token, expires_at, lifetime, scope}`
    set = function(key, token)
      local p = path(key)
      if not p then return end
      if not made then
        os.execute("mkdir -p -m 700 " .. sh(dir) .. " 2>/dev/null")
        made = true
      end
      local f = core.tmpfile(p)
      if not f then return end
      if f:write(core.json_encode({ access_token = token.access_token, expires_at = token.expires_at,
        lifetime = token.lifetime, scope = token.scope })) then
        f:commit(true)
      else
        f:abort()
      end
    end,
  }
end

return M
