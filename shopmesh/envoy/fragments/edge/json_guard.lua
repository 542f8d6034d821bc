-- Rejects a JSON request body that names a field the API does not define, or
-- gives a repeated field something other than a JSON array.
--
-- Envoy's gRPC-JSON transcoder silently drops unknown JSON fields, so a typo
-- ("quantiy": 3) would reach the service as a request without that field; and
-- it takes a single value where the contract has a list ("recipients": "Ada"
-- as ["Ada"]) and flattens nested arrays, which proto3's JSON mapping does
-- not allow. This filter runs before the transcoder and answers 400 with a
-- JSON google.rpc.Status (BadRequest field violations, google_rpc_status.lua)
-- instead. Everything else (malformed JSON, other wrong types) is left to the
-- transcoder, which rejects it.
--
-- The renderer (shopmesh/envoy/json_guard.py) puts two tables, generated
-- from the descriptors, in front of this code:
--   ROUTES    {method =, pattern = <Lua pattern over the path>, message =,
--              body = "*" or the name of the field the body holds}
--   MESSAGES  message name -> JSON key -> what the field holds: false (a
--             value not inspected: scalar, enum, well-known type), the
--             message name of its value, {list = <message name or false>}
--             for a repeated field, {map = <message name or false>} for a map.

local OBJECT = {}
local ARRAY = {}
local NULL = {} -- JSON null: a field's default value in proto3 JSON
local ESCAPES = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/",
  b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

-- A small JSON reader: objects and arrays become tables tagged OBJECT/ARRAY,
-- strings stay strings, null is NULL, any other value is `true` (only keys and
-- the shape of values matter here).
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
    return text:sub(first, last) == "null" and NULL or true
  end

  local value = read_value()
  skip_space()
  if pos <= #text then
    error("trailing characters")
  end
  return value
end

local check_message

-- `value` for a field that holds `field` (a MESSAGES entry), at `where`.
local function check_value(value, field, where, problems)
  if value == NULL then
    return
  end
  if type(field) == "table" and field.map ~= nil then
    if getmetatable(value) == OBJECT then
      for key, entry in pairs(value) do
        check_value(entry, field.map, where .. "[" .. key .. "]", problems)
      end
    end -- not an object: the transcoder reports the wrong type
  elseif type(field) == "table" then
    if getmetatable(value) ~= ARRAY then
      problems[#problems + 1] = {field = where, description = "must be a JSON array"}
      return
    end
    for index, item in ipairs(value) do
      local at = where .. "[" .. (index - 1) .. "]"
      if getmetatable(item) == ARRAY then
        problems[#problems + 1] = {field = at, description = "must not be an array"}
      else
        check_value(item, field.list, at, problems)
      end
    end
  elseif field then
    check_message(value, field, where .. ".", problems)
  end
end

function check_message(value, message, path, problems)
  if getmetatable(value) ~= OBJECT then
    return -- not an object: the transcoder reports the wrong type
  end
  local fields = MESSAGES[message]
  for key, child in pairs(value) do
    local field = fields[key]
    if field == nil then
      problems[#problems + 1] = {field = path .. key, description = "unknown field"}
    else
      check_value(child, field, path .. key, problems)
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
  local problems = {}
  if route.body == "*" then
    check_message(value, route.message, "", problems)
  else
    local field = MESSAGES[route.message][route.body]
    if field ~= nil then
      check_value(value, field, route.body, problems)
    end
  end
  if #problems > 0 then
    reject_invalid_argument(handle, "the JSON body does not match " .. route.message .. ": "
      .. describe_problems(problems), problems)
  end
end
