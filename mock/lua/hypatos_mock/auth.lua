-- hypatos_mock.auth — OAuth 2.0 client-credentials token endpoint (POST /v2/auth/token),
-- the bearer-token check with scopes for every other /v2 call, and token revocation /
-- expiry used by the control API and the revoke/expire faults.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"

local ngx = ngx
local find, match, sub, gsub, lower = string.find, string.match, string.sub, string.gsub, string.lower
local concat, random, pairs, ipairs = table.concat, math.random, pairs, ipairs

local M = {}

-- Characters of an RFC 6750 b64token that need no quoting anywhere.
local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
local TOKEN_LENGTH = 48

-- A fresh random access token.
local function new_token()
  local t = {}
  for i = 1, TOKEN_LENGTH do
    local r = random(1, #ALPHABET)
    t[i] = sub(ALPHABET, r, r)
  end
  return concat(t)
end

-- application/x-www-form-urlencoded decoding of one component ('+' is a space).
local function form_decode(s)
  return ngx.unescape_uri((gsub(s, "%+", " ")))
end

-- Client id and secret from an HTTP Basic header (RFC 6749 §2.3.1), or nil.
local function basic_credentials()
  local h = ngx.var.http_authorization
  if not h then return nil end
  local b64 = match(h, "^[Bb][Aa][Ss][Ii][Cc] +([%w%+/=]+) *$")
  if not b64 then return nil end
  local raw = ngx.decode_base64(b64)
  if not raw then return nil end
  local colon = find(raw, ":", 1, true)
  if not colon then return nil end
  return form_decode(sub(raw, 1, colon - 1)), form_decode(sub(raw, colon + 1))
end

-- Drop expired tokens (called now and then so the table stays bounded).
local function purge(now)
  for tok, rec in pairs(state.tokens) do
    if rec.expires_at <= now then state.tokens[tok] = nil end
  end
end

local INVALID_CLIENT = { title = "Invalid client credentials",
                         detail = "The provided client credentials are not valid", status = 401 }

--- POST /v2/auth/token handler.
function M.token(req)
  local id, secret = basic_credentials()
  local client = id and state.derived.clients[id]
  if not client or client.secret ~= secret then
    return 401, INVALID_CLIENT, { ["WWW-Authenticate"] = 'Basic realm="hypatos"' }
  end
  local ctype = match(lower(ngx.var.content_type or ""), "^%s*([^;%s]+)")
  if ctype ~= "application/x-www-form-urlencoded" then
    util.raise(400, "Unsupported content type",
      "The token request must be sent as application/x-www-form-urlencoded")
  end
  local args = ngx.decode_args(util.read_body(), 0)
  local grant = util.single(args.grant_type)
  if grant ~= "client_credentials" then
    util.raise(400, "Unsupported grant type", "Only grant_type=client_credentials is supported")
  end

  -- Scopes: everything the client has, or the requested subset.
  local granted = client.scopes
  local wanted = util.single(args.scope)
  if wanted and find(wanted, "%S") then
    granted = {}
    for s in wanted:gmatch("%S+") do
      if not client.scope_set[s] then
        util.raise(400, "Invalid scope", "The requested scope is invalid, unknown or exceeds the client's scopes")
      end
      granted[#granted + 1] = s
    end
  end

  local cfg = state.config
  local tok = new_token()
  local set = {}
  for _, s in ipairs(granted) do set[s] = true end
  state.tokens[tok] = { client_id = id, scope_set = set, expires_at = req.now + cfg.token_ttl }
  state.token_count = state.token_count + 1
  if state.token_count % 1000 == 0 then purge(req.now) end

  local body = { access_token = tok, token_type = "Bearer", scope = concat(granted, " ") }
  if not cfg.omit_expires_in then body.expires_in = cfg.token_ttl end
  return 200, body, {
    ["Content-Type"] = "application/json;charset=UTF-8",
    ["Cache-Control"] = "no-store",
    ["Pragma"] = "no-cache",
  }
end

local BEARER_CHALLENGE = { ["WWW-Authenticate"] = 'Bearer error="invalid_token"' }

--- Check the bearer token of the current request and the route's scope; raises the
-- 401 "Invalid token" / 403 "Forbidden" API errors. Returns the token record.
function M.check(req, scope)
  local h = ngx.var.http_authorization
  local tok = h and match(h, "^[Bb][Ee][Aa][Rr][Ee][Rr] +([^%s]+) *$")
  if not tok then
    util.raise(401, "Invalid token", "No bearer token was provided", BEARER_CHALLENGE)
  end
  local rec = state.tokens[tok]
  if not rec then
    util.raise(401, "Invalid token", "The access token is invalid or has been revoked", BEARER_CHALLENGE)
  end
  if req.now >= rec.expires_at then
    state.tokens[tok] = nil
    util.raise(401, "Invalid token", "The access token has expired", BEARER_CHALLENGE)
  end
  if scope and not rec.scope_set[scope] then
    util.raise(403, "Forbidden", "Not enough privileges to perform an action on a resource")
  end
  return rec
end

--- Invalidate every token; returns how many were live.
function M.revoke_all()
  local n = M.live(ngx.now())
  state.tokens = {}
  return n
end

--- Mark every current token as expired.
function M.expire_all(now)
  for _, rec in pairs(state.tokens) do rec.expires_at = now - 1 end
end

--- Number of live (unexpired) tokens.
function M.live(now)
  purge(now)
  local n = 0
  for _ in pairs(state.tokens) do n = n + 1 end
  return n
end

--- Register the token route.
function M.register(r)
  r:add("POST", "/v2/auth/token", M.token, { public = true, token = true })
end

return M
