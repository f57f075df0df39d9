-- wrk script for bench/run.sh. Mode and data file come from the environment:
--   BENCH_MODE = get | list | post | post_key | patch | mcp_get | bare ;  BENCH_DATA = file written by bench/seed.rs
--   BENCH_PROJECT = the project to list or create in (default: the first one in the file)
--
-- Each thread builds its requests once, in `init`, and `request` only steps through them: building
-- them per request (headers table, wrk.format) cost the client about 3 us of Lua per GET, CPU that
-- the server shares on a 2-core machine. The ring is as long as what it cycles through (every task
-- for get and patch, every token for list), so the server sees the same spread of rows as before.
local mode = os.getenv("BENCH_MODE") or "bare"
local tokens, tasks, projects = {}, {}, {}
local data = os.getenv("BENCH_DATA")
if data and data ~= "" then
  for line in io.lines(data) do
    local kind, value = line:match("^(%S+) (%S+)")
    if kind == "token" then tokens[#tokens + 1] = value
    elseif kind == "task" then tasks[#tasks + 1] = value
    elseif kind == "project" then projects[#projects + 1] = value end
  end
end
local project = os.getenv("BENCH_PROJECT")
if project == nil or project == "" then project = projects[1] end
local counter = 0

function setup(thread)
  -- Spread the threads over the task list, so two threads do not patch one task in step.
  counter = counter + 1
  thread:set("offset", counter * 7919)
end

local function build(n)
  if mode == "bare" then return wrk.format("GET", "/") end
  local headers = { ["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1] }
  local task = tasks[(n % #tasks) + 1]
  if mode == "get" then
    return wrk.format("GET", "/api/tasks/" .. task, headers)
  elseif mode == "list" then
    return wrk.format("GET", "/api/tasks?projectId=" .. project .. "&limit=50", headers)
  elseif mode == "mcp_get" then
    -- The same read as `get`, as an MCP tool call.
    headers["Content-Type"] = "application/json"
    headers["MCP-Protocol-Version"] = "2025-06-18"
    return wrk.format("POST", "/mcp", headers, '{"jsonrpc":"2.0","id":' .. n ..
      ',"method":"tools/call","params":{"name":"get_task","arguments":{"id":"' .. task .. '"}}}')
  end
  headers["Content-Type"] = "application/json"
  if mode == "post_key" then
    -- Every request needs a key of its own: `request` puts one in place of this.
    headers["Idempotency-Key"] = KEY_PLACEHOLDER
  end
  if mode == "post" or mode == "post_key" then
    return wrk.format("POST", "/api/tasks", headers, '{"projectId":"' .. project .. '","title":"bench ' .. n .. '"}')
  else
    local priorities = { "low", "medium", "high" }
    return wrk.format("PATCH", "/api/tasks/" .. task, headers, '{"priority":"' .. priorities[(n % 3) + 1] .. '"}')
  end
end

local ring, at = {}, 0
-- post_key: the request around its key, and the keys' fixed-width parts.
local before_key, after_key, key_prefix, sent = nil, nil, nil, 0
KEY_PLACEHOLDER = "@@KEY@@"

function init(args)
  local size = 1
  if mode == "get" or mode == "patch" or mode == "mcp_get" then size = #tasks
  elseif mode == "list" then size = #tokens
  elseif mode == "post" then size = 1000 end
  for i = 1, size do ring[i] = build(i + (offset or 0)) end
  if mode == "post_key" then
    before_key, after_key = ring[1]:match("^(.-)" .. KEY_PLACEHOLDER .. "(.*)$")
    key_prefix = string.format("%08x-%06d-", os.time(), offset or 0)
  end
end

function request()
  if mode == "post_key" then
    sent = sent + 1
    return before_key .. key_prefix .. sent .. after_key
  end
  at = at % #ring + 1
  return ring[at]
end
