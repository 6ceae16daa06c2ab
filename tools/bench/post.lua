-- tools/bench/post.lua
--      wrk script: POST an Anthropic Messages request.
--
-- NOTES
--      tools/bench.sh sets BENCH_BODY (file holding the JSON body) and
--      BENCH_KEY (the client key, sent as x-api-key); the path comes from
--      the URL on wrk's command line (.../v1/messages).  The request is built once by wrk.format() at
--      start-up: no request() or response() callbacks, so Lua costs nothing
--      per request and wrk stays as cheap as it is with a plain GET.
--      anthropic-version is what the Anthropic SDKs send.

local function getenv(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

local path = getenv("BENCH_BODY", nil)
if path == nil then
    error("post.lua: BENCH_BODY is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = getenv("BENCH_KEY", "bench-key")
