--- bench/map-token.lua — not yet
return { name = "map-token", pending = "not written yet" }
