--- bench/get-split.lua — not yet
return { name = "get-split", pending = "not written yet" }
