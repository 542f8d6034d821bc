-- Rejects a JSON request body that names a field the API does not define.
--
-- Envoy's gRPC-JSON transcoder silently drops unknown JSON fields, so a typo
-- ("quantiy": 3) would reach the service as a request without that field.
-- This filter runs before the transcoder and answers 400 with a JSON
-- google.rpc.Status (BadRequest field violations) instead. Everything else
-- (malformed JSON, wrong types) is left to the transcoder, which rejects it.
--
-- The renderer (shopmesh/envoy/json_guard.py) puts two tables, generated
-- from the descriptors, in front of this code:
--   ROUTES    {method =, pattern = <Lua pattern over the path>, message =,
--              body = "*" or the name of the field the body holds}
--   MESSAGES  message name -> JSON key -> false (a value not inspected:
--             scalar, enum, well-known type) or the message name of its
--             value, or {map = <message name or false>} for map fields.

local OBJECT = {}
local ARRAY = {}
local ESCAPES = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/",
  b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

-- A small JSON reader: objects and arrays become tables tagged OBJECT/ARRAY,
-- strings stay strings, any other value is `true` (only keys matter here).
local function parse(text)
  local pos = 1

  local function skip_space()
    pos = text:find("[^ \t\r\n]", pos) or (#text + 1)
  end

  local function expect(char)
    skip_space()
    if text:sub(pos, pos) ~= char then
      error("expected " .. char)
    end
    pos = pos + 1
  end

  local function read_string()
    local parts, i = {}, pos + 1
    while true do
      local stop = text:find('["\\]', i)
      if not stop then
        error("unterminated string")
      end
      parts[#parts + 1] = text:sub(i, stop - 1)
      if text:sub(stop, stop) == '"' then
        pos = stop + 1
        return table.concat(parts)
      end
      local escape = text:sub(stop + 1, stop + 1)
      if escape == "u" then
        -- Kept as written: a key spelled with \u escapes is unknown anyway.
        parts[#parts + 1] = text:sub(stop, stop + 5)
        i = stop + 6
      else
        parts[#parts + 1] = ESCAPES[escape] or error("bad escape")
        i = stop + 2
      end
    end
  end

  local read_value

  local function read_container(close, tag, read_item)
    local container = setmetatable({}, tag)
    pos = pos + 1
    skip_space()
    if text:sub(pos, pos) == close then
      pos = pos + 1
      return container
    end
    while true do
      read_item(container)
      skip_space()
      local char = text:sub(pos, pos)
      pos = pos + 1
      if char == close then
        return container
      elseif char ~= "," then
        error("expected , or " .. close)
      end
    end
  end

  function read_value()
    skip_space()
    local char = text:sub(pos, pos)
    if char == "{" then
      return read_container("}", OBJECT, function(object)
        skip_space()
        if text:sub(pos, pos) ~= '"' then
          error("expected a key")
        end
        local key = read_string()
        expect(":")
        object[key] = read_value()
      end)
    elseif char == "[" then
      return read_container("]", ARRAY, function(array)
        array[#array + 1] = read_value()
      end)
    elseif char == '"' then
      return read_string()
    end
    local first, last = text:find("^[%w%.%+%-]+", pos)
    if not first then
      error("expected a value")
    end
    pos = last + 1
    return true
  end

  local value = read_value()
  skip_space()
  if pos <= #text then
    error("trailing characters")
  end
  return value
end

local function check_message(value, message, path, unknown)
  if getmetatable(value) ~= OBJECT then
    return -- not an object: the transcoder reports the wrong type
  end
  local fields = MESSAGES[message]
  for key, child in pairs(value) do
    local field = fields[key]
    local where = path .. key
    if field == nil then
      unknown[#unknown + 1] = where
    elseif type(field) == "table" then
      if field.map and getmetatable(child) == OBJECT then
        for map_key, entry in pairs(child) do
          check_message(entry, field.map, where .. "[" .. map_key .. "].", unknown)
        end
      end
    elseif field then
      if getmetatable(child) == ARRAY then
        for index, item in ipairs(child) do
          check_message(item, field, where .. "[" .. (index - 1) .. "].", unknown)
        end
      else
        check_message(child, field, where .. ".", unknown)
      end
    end
  end
end

local function route_of(method, path)
  path = path:gsub("%?.*", "")
  for _, route in ipairs(ROUTES) do
    if route.method == method and path:find(route.pattern) then
      return route
    end
  end
end

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(char)
    return string.format("\\u%04x", char:byte())
  end) .. '"'
end

local function reject(handle, message, unknown)
  local violations = {}
  for index, field in ipairs(unknown) do
    violations[index] = '{"field":' .. json_string(field) .. ',"description":"unknown field"}'
  end
  local body = '{"code":3,"message":' .. json_string(message) .. ',"details":[{'
    .. '"@type":"type.googleapis.com/google.rpc.BadRequest",'
    .. '"fieldViolations":[' .. table.concat(violations, ",") .. "]}]}"
  -- Already a google.rpc.Status: tells the edge's JSON error mappers
  -- (json_error_mapper.yaml) to leave this reply as it is.
  handle:streamInfo():dynamicMetadata():set("shopmesh.json_guard", "rewrite_reply", false)
  handle:respond({[":status"] = "400", ["content-type"] = "application/json"}, body)
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  if content_type:find("^application/grpc") then
    return
  end
  local route = route_of(headers:get(":method"), headers:get(":path"))
  if not route then
    return
  end
  local buffer = handle:body()
  if not buffer or buffer:length() == 0 then
    return
  end
  local ok, value = pcall(parse, buffer:getBytes(0, buffer:length()))
  if not ok then
    return -- malformed JSON: the transcoder answers 400 with its parse error
  end
  local unknown = {}
  if route.body == "*" then
    check_message(value, route.message, "", unknown)
  else
    local field = MESSAGES[route.message][route.body]
    if field then
      check_message(value, field, route.body .. ".", unknown)
    end
  end
  if #unknown > 0 then
    table.sort(unknown)
    reject(handle, "unknown field(s) in " .. route.message .. ": "
      .. table.concat(unknown, ", "), unknown)
  end
end
