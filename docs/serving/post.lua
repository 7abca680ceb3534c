-- wrk script: POST the image files given after "--" to /v1/classify in
-- turn, each connection starting at its own file.
--   wrk -c 32 -d 30s --latency -s docs/serving/post.lua URL -- FILE ...
local bodies, types = {}, {}
local n = 0

function init(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
    types[#types + 1] = path:match("%.png$") and "image/png" or "image/jpeg"
  end
  assert(#bodies > 0, "give image files after --")
  n = math.random(#bodies)
end

function request()
  n = n % #bodies + 1
  return wrk.format("POST", "/v1/classify", {["Content-Type"] = types[n]}, bodies[n])
end
