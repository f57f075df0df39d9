-- wrk script for bench/run.sh. Mode and data file come from the environment:
--   BENCH_MODE = get | list | post | patch | bare ;  BENCH_DATA = file written by bench/seed.rs
--   BENCH_PROJECT = the project to list or create in (default: the first one in the file)
local mode = os.getenv("BENCH_MODE") or "bare"
local tokens, tasks, projects = {}, {}, {}
local data = os.getenv("BENCH_DATA")
if data then
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

function request()
  if mode == "bare" then return wrk.format("GET", "/") end
  counter = counter + 1
  local n = counter + (offset or 0)
  local headers = { ["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1] }
  local task = tasks[(n % #tasks) + 1]
  if mode == "get" then
    return wrk.format("GET", "/api/tasks/" .. task, headers)
  elseif mode == "list" then
    return wrk.format("GET", "/api/tasks?projectId=" .. project .. "&limit=50", headers)
  end
  headers["Content-Type"] = "application/json"
  if mode == "post" then
    return wrk.format("POST", "/api/tasks", headers, '{"projectId":"' .. project .. '","title":"bench ' .. n .. '"}')
  else
    local priorities = { "low", "medium", "high" }
    return wrk.format("PATCH", "/api/tasks/" .. task, headers, '{"priority":"' .. priorities[(n % 3) + 1] .. '"}')
  end
end
