-- hypatos_mock.state — all mutable server state, kept in module-level tables of the one
-- nginx worker: the configuration (defaults, the start-up config, runtime changes), live
-- tokens, the fault queue, the rate-limit window and the seed data. Other modules read
-- fields through this table (never cache `state.config` etc. in a local: reset replaces them).

local seed = require "hypatos_mock.seed"
local util = require "hypatos_mock.util"

local type, pairs, ipairs, tostring, floor = type, pairs, ipairs, tostring, math.floor

local M = {}

local ALL_SCOPES = {
  "companies.read", "documents.read", "documents.write", "enrichment.read", "enrichment.write",
  "enrichment.delete", "files.read", "files.write", "projects.read", "projects.write",
  "users.read", "emails.read",
}
M.ALL_SCOPES = ALL_SCOPES

-- Built-in defaults (see the README of the mock / the launcher for the meaning of each key).
local function defaults()
  return {
    quota = 1000000,          -- requests allowed per rate-limit window
    window = 1,               -- window length in seconds
    token_ttl = 3600,         -- token lifetime in seconds (the expires_in returned)
    omit_expires_in = false,  -- leave expires_in out of token responses
    ietf_headers = false,     -- also send RateLimit / RateLimit-Policy
    rate_headers = true,      -- send rate-limit headers at all
    processing_time = 1.0,    -- seconds from process-file until a document is final
    fail_every = 0,           -- every Nth processed document ends in `failed` (0 = never)
    latency = 0,              -- seconds every /v2 request waits before it is answered
    clients = {
      ["test-client"] = { secret = "test-secret", scopes = ALL_SCOPES },
      ["readonly-client"] = { secret = "readonly-secret",
                              scopes = { "companies.read", "users.read", "documents.read" } },
      ["weird:client id"] = { secret = "p@ss:w rd+%", scopes = ALL_SCOPES },
    },
  }
end

-- Deep copy of plain data (config values, seed records).
local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end
M.copy = copy

-- Validators per known config key: return the normalised value, or nil and a message.
local function positive_int(v)
  if type(v) == "number" and v >= 1 and v == floor(v) then return v end
  return nil, "must be a positive integer"
end
local function positive_number(v)
  if type(v) == "number" and v > 0 then return v end
  return nil, "must be a positive number"
end
local function nonneg_number(v)
  if type(v) == "number" and v >= 0 then return v end
  return nil, "must be a non-negative number"
end
local function nonneg_int(v)
  if type(v) == "number" and v >= 0 and v == floor(v) then return v end
  return nil, "must be a non-negative integer"
end
local function boolean(v)
  if type(v) == "boolean" then return v end
  return nil, "must be a boolean"
end
local function clients(v)
  if type(v) ~= "table" then return nil, "must be an object" end
  local out = {}
  for id, c in pairs(v) do
    if type(id) ~= "string" or type(c) ~= "table" or type(c.secret) ~= "string" then
      return nil, "must map client ids to {secret = string, scopes = [string...]}"
    end
    local scopes = {}
    for _, s in ipairs(type(c.scopes) == "table" and c.scopes or {}) do
      if type(s) ~= "string" then return nil, "scopes must be strings" end
      scopes[#scopes + 1] = s
    end
    out[id] = { secret = c.secret, scopes = scopes }
  end
  return out
end

local VALIDATE = {
  quota = positive_int, window = positive_number, token_ttl = nonneg_number,
  omit_expires_in = boolean, ietf_headers = boolean, rate_headers = boolean, clients = clients,
  processing_time = nonneg_number, fail_every = nonneg_int, latency = nonneg_number,
}

-- Format a number as an integer when it is integral (for header values).
local function num(v)
  if v == floor(v) and v < 1e15 then return string.format("%d", v) end
  return tostring(v)
end
M.num = num

-- Recompute values derived from the config (header strings, client scope sets).
local function derive(cfg)
  local d = {}
  d.policy = num(cfg.quota) .. ";w=" .. num(cfg.window)
  d.limit_header = num(cfg.quota) .. ", " .. d.policy
  d.clients = {}
  for id, c in pairs(cfg.clients) do
    local set = {}
    for _, s in ipairs(c.scopes) do set[s] = true end
    d.clients[id] = { secret = c.secret, scopes = c.scopes, scope_set = set }
  end
  M.derived = d
end

--- Merge `patch` into config table `cfg` after validating every known key. Unknown keys
-- are kept as given (later phases read them); a JSON null restores the start-up value.
-- @return true, or nil and an error message (cfg is then unchanged)
function M.merge(cfg, patch)
  if type(patch) ~= "table" then return nil, "config must be a JSON object" end
  local staged = {}
  for k, v in pairs(patch) do
    if type(k) ~= "string" then return nil, "config keys must be strings" end
    if v == util.null then
      staged[k] = { copy((M.base or defaults())[k]) }
    else
      local check = VALIDATE[k]
      if check then
        local ok, msg = check(v)
        if ok == nil then return nil, k .. " " .. msg end
        v = ok
      end
      staged[k] = { copy(v) }
    end
  end
  for k, box in pairs(staged) do cfg[k] = box[1] end
  return true
end

--- Apply a runtime config change (POST /_mock/config).
function M.configure(patch)
  local ok, err = M.merge(M.config, patch)
  if ok then derive(M.config) end
  return ok, err
end

-- Reset hooks registered by resource modules (later phases keep their own state).
local reset_hooks = {}

--- Register `fn()` to run on every reset (after the core state is rebuilt).
function M.on_reset(fn)
  reset_hooks[#reset_hooks + 1] = fn
end

--- Restore the start-up state: config, tokens, faults, rate window, stats, seed data.
function M.reset()
  M.config = copy(M.base)
  derive(M.config)
  M.tokens = {}             -- token string -> {client_id, scope_set, expires_at}
  M.token_count = 0         -- tokens issued since the last purge check
  M.faults = {}             -- queue of pending faults
  M.rl = { start = -1, count = 0 }
  M.data = seed.build()
  require("hypatos_mock.stats").reset()
  for _, fn in ipairs(reset_hooks) do fn() end
end

--- One-time initialisation with the start-up config (from the launcher's JSON file).
-- @return true, or nil and an error message
function M.init(startup)
  local base = defaults()
  if startup ~= nil then
    -- Clients given at start-up replace the defaults as a whole, like at runtime.
    local ok, err = M.merge(base, startup)
    if not ok then return nil, err end
  end
  M.base = base
  M.reset()
  return true
end

return M
