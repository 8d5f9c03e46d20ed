-- hypatos_mock.seed — deterministic seed data for the fake Hypatos server.
--
-- Everything is computed from the record index, so every server instance (and every
-- reset) produces byte-identical data. Pure Lua: no ngx API, so it also loads on
-- Lua 5.4 (`require "mock.lua.hypatos_mock.seed"`) for tests that want the facts.
--
-- Facts clients may rely on: 3 companies (the first is the tenant), 57 users of which
-- every fifth (index 5, 10, ..., 55) is inactive (11 inactive, 46 active), users with
-- index 1, 20 and 39 are internal Hypatos staff (`isInternal = true`, @hypatos.ai).

local format, lower = string.format, string.lower

local M = {}

M.ROLES = { "installationAdmin", "installationClerk", "admin", "clerk", "manager", "supportSpecialist" }

M.USER_COUNT = 57

-- Companies: {name, mail domain, active, creation time (epoch seconds)}.
local COMPANIES = {
  { "Hypatos Demo GmbH", "hypatos-demo.example", true, 1676043832 },
  { "Nordlicht Logistik AG", "nordlicht-logistik.example", true, 1678271455 },
  { "Acme Supplies Ltd", "acme-supplies.example", false, 1684158020 },
}

-- Given names and family names: {display form, ASCII form for the e-mail address}.
local FIRST = {
  { "Anna", "anna" }, { "Jürgen", "juergen" }, { "Sofia", "sofia" }, { "Mehmet", "mehmet" },
  { "Chloé", "chloe" }, { "Lukas", "lukas" }, { "Priya", "priya" }, { "Oliver", "oliver" },
  { "Zoë", "zoe" }, { "Hiroshi", "hiroshi" }, { "Fatima", "fatima" }, { "Mateo", "mateo" },
  { "Elena", "elena" }, { "Kwame", "kwame" }, { "Ingrid", "ingrid" }, { "Rafael", "rafael" },
  { "Mia", "mia" }, { "Tomasz", "tomasz" }, { "Aisha", "aisha" }, { "Noah", "noah" },
}
local LAST = {
  { "Schmidt", "schmidt" }, { "Müller", "mueller" }, { "García", "garcia" }, { "Nowak", "nowak" },
  { "Okafor", "okafor" }, { "Rossi", "rossi" }, { "Tanaka", "tanaka" }, { "Dubois", "dubois" },
  { "Larsen", "larsen" }, { "Kowalski", "kowalski" }, { "Silva", "silva" }, { "Ivanova", "ivanova" },
  { "Becker", "becker" }, { "O'Brien", "obrien" }, { "Fischer", "fischer" }, { "Weber", "weber" },
  { "Lindqvist", "lindqvist" }, { "Haddad", "haddad" }, { "Nguyen", "nguyen" },
}

-- Role sets handed out round-robin to ordinary memberships.
local ROLE_SETS = {
  { "clerk" }, { "admin" }, { "manager", "clerk" }, { "clerk" }, { "manager" },
  { "admin", "manager" }, { "clerk", "supportSpecialist" },
}
-- Role sets for internal (Hypatos staff) users.
local INTERNAL_ROLE_SETS = {
  { "installationAdmin" }, { "installationClerk", "supportSpecialist" }, { "installationAdmin", "admin" },
}

-- ISO-8601 UTC timestamp with microseconds, the API's createdAt style.
local function iso(t, micros)
  return os.date("!%Y-%m-%dT%H:%M:%S", t) .. format(".%06dZ", micros % 1000000)
end

-- A 24-hex ObjectId: 4-byte timestamp, fixed 5-byte "machine" part, 3-byte counter.
local function object_id(t, machine, counter)
  return format("%08x%s%06x", t, machine, counter)
end

-- Build the companies list (index 1 is the tenant).
local function build_companies()
  local list = {}
  for i, c in ipairs(COMPANIES) do
    list[i] = {
      id = object_id(c[4], "9db1ab740c", 0x3e2960 + i),
      name = c[1],
      active = c[3],
      createdAt = iso(c[4], 384990 + i * 1111),
      domain = c[2], -- internal helper field, stripped from API output
    }
  end
  return list
end

-- Primary company index of user i: half the users belong to the tenant.
local function primary_company(i)
  local m = i % 4
  if m == 1 or m == 2 then return 1 elseif m == 3 then return 2 end
  return 3
end

-- Build user number i (1-based) given the companies.
local function build_user(i, companies)
  local first = FIRST[(i * 7) % #FIRST + 1]
  local last = LAST[(i * 11) % #LAST + 1]
  local internal = (i % 19 == 1)
  local pc = primary_company(i)
  local created = 1680016579 + i * 97531 -- spread over roughly two months per ten users
  local domain = internal and "hypatos.ai" or companies[pc].domain
  local email = format("%s.%s@%s", first[2], last[2], domain)
  if i % 6 == 0 then email = format("%s%s%d@%s", first[2]:sub(1, 1), last[2], i, domain) end

  -- Memberships: the primary company first; most users also belong to the next company
  -- and two in three to the third; every eleventh user to the primary one only.
  -- Internal users see every company.
  local member_of = { pc }
  if internal then
    member_of = { 1, 2, 3 }
  elseif i % 11 ~= 0 then
    member_of[2] = pc % 3 + 1
    if i % 3 ~= 1 then member_of[3] = (pc + 1) % 3 + 1 end
  end
  local access = {}
  for k, ci in ipairs(member_of) do
    local c = companies[ci]
    local roles
    if internal then
      roles = INTERNAL_ROLE_SETS[(i + k) % #INTERNAL_ROLE_SETS + 1]
    else
      roles = ROLE_SETS[(i * 3 + k) % #ROLE_SETS + 1]
    end
    local copy = {}
    for r = 1, #roles do copy[r] = roles[r] end
    access[k] = {
      companyId = c.id,
      companyName = c.name,
      active = not (k > 1 and i % 7 == 0),
      createdAt = iso(created + k * 3600, (i * 7919 + k * 104729) % 1000000),
      roles = copy,
    }
  end

  return {
    id = object_id(created, "7a3cd6803f", 0x112200 + i),
    email = email,
    name = first[1] .. " " .. last[1],
    companiesAccess = access,
    active = (i % 5 ~= 0),
    isInternal = internal,
  }
end

--- Build a fresh copy of all seed data.
-- @return table `{companies, company_by_id, users, user_by_id, user_search}` (user_search maps a
--   user record to its lower-cased "name\nemail" text)
function M.build()
  local companies = build_companies()
  local users = {}
  for i = 1, M.USER_COUNT do users[i] = build_user(i, companies) end
  -- Strip helper fields so the records are exactly what the API serves.
  for _, c in ipairs(companies) do c.domain = nil end
  local company_by_id, user_by_id, user_search = {}, {}, {}
  for _, c in ipairs(companies) do company_by_id[c.id] = c end
  for _, u in ipairs(users) do
    user_by_id[u.id] = u
    -- Pre-lowered search text (ASCII case folding only), kept outside the record.
    user_search[u] = lower(u.name) .. "\n" .. lower(u.email)
  end
  return { companies = companies, company_by_id = company_by_id, users = users, user_by_id = user_by_id,
           user_search = user_search }
end

--- Summary of the seed (served by GET /_mock/seed).
-- @param data the table returned by build()
function M.summary(data)
  local active, internal = 0, 0
  for _, u in ipairs(data.users) do
    if u.active then active = active + 1 end
    if u.isInternal then internal = internal + 1 end
  end
  local companies = {}
  for i, c in ipairs(data.companies) do companies[i] = { id = c.id, name = c.name, active = c.active } end
  return {
    tenant = { id = data.companies[1].id, name = data.companies[1].name },
    companies = companies,
    users = { total = #data.users, active = active, inactive = #data.users - active, internal = internal,
              first = { id = data.users[1].id, name = data.users[1].name, email = data.users[1].email } },
  }
end

return M
