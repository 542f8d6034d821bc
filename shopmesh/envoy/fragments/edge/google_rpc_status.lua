-- How the edge's Lua guards refuse a request: INVALID_ARGUMENT with a
-- BadRequest naming each problem. REST clients get HTTP 400 and a JSON
-- google.rpc.Status, as every other error of the edge; gRPC clients get the
-- status and message. The renderer (shopmesh/envoy/lua_guard.py) puts this in
-- front of each guard's own code.

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(char)
    return string.format("\\u%04x", char:byte())
  end) .. '"'
end

-- grpc-message is percent-encoded (the gRPC HTTP/2 protocol).
local function grpc_message(text)
  return (text:gsub("[^ -$&-~]", function(char)
    return string.format("%%%02X", char:byte())
  end))
end

-- `problems`: a list of {field =, description =}.
function reject_invalid_argument(handle, message, problems)
  local content_type = handle:headers():get("content-type") or ""
  if content_type:find("^application/grpc") then
    handle:respond({
      [":status"] = "200",
      ["content-type"] = "application/grpc",
      ["grpc-status"] = "3",
      ["grpc-message"] = grpc_message(message),
    }, "")
    return
  end
  local violations = {}
  for index, problem in ipairs(problems) do
    violations[index] = '{"field":' .. json_string(problem.field)
      .. ',"description":' .. json_string(problem.description) .. "}"
  end
  local body = '{"code":3,"message":' .. json_string(message) .. ',"details":[{'
    .. '"@type":"type.googleapis.com/google.rpc.BadRequest",'
    .. '"fieldViolations":[' .. table.concat(violations, ",") .. "]}]}"
  -- Already a google.rpc.Status: tells the edge's JSON error mappers
  -- (json_error_mapper.yaml) to leave this reply as it is.
  handle:streamInfo():dynamicMetadata():set("shopmesh.lua_guard", "rewrite_reply", false)
  handle:respond({[":status"] = "400", ["content-type"] = "application/json"}, body)
end

-- "a (why), b (why)" of sorted problems, for a status message.
function describe_problems(problems)
  table.sort(problems, function(a, b) return a.field < b.field end)
  local named = {}
  for index, problem in ipairs(problems) do
    named[index] = problem.field .. " (" .. problem.description .. ")"
  end
  return table.concat(named, ", ")
end
