--- bench/map-uploads.lua — not yet
return { name = "map-uploads", pending = "not written yet" }
