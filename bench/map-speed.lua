--- bench/map-speed.lua — not yet
return { name = "map-speed", pending = "not written yet" }
