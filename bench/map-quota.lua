--- bench/map-quota.lua — not yet
return { name = "map-quota", pending = "not written yet" }
