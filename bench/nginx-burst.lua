--- bench/nginx-burst.lua — not yet
return { name = "nginx-burst", pending = "not written yet" }
