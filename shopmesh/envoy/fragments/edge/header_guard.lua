-- Refuses a request with a header that gRPC cannot carry to a service.
--
-- The edge hands a client's headers on to the services as gRPC metadata. HTTP
-- allows header names that gRPC does not (gRPC: 0-9 a-z _ . - only, so no "+",
-- "~", "!", ...); to gRPC a name ending in -bin is base64 binary metadata; and
-- grpc-timeout (how a REST client sends its deadline) has a syntax of its own.
-- The service's gRPC library refuses such a call before any of the shop's code
-- runs, as INTERNAL with its own text (HTTP 500). This filter answers
-- INVALID_ARGUMENT naming each such header instead (google_rpc_status.lua).

local NAME = "^[0-9a-z_.%-]+$"
local TIMEOUT = "^%d%d?%d?%d?%d?%d?%d?%d?[HMSmun]$"

function envoy_on_request(handle)
  local headers = handle:headers()
  local grpc = (headers:get("content-type") or ""):find("^application/grpc") ~= nil
  local problems = {}
  for name, value in pairs(headers) do
    if name:sub(1, 1) == ":" then
      -- pseudo-headers: the request line, not metadata
    elseif not name:find(NAME) then
      problems[#problems + 1] = {
        field = name, description = "gRPC metadata names take 0-9, a-z, _, . and - only",
      }
    elseif not grpc and name:sub(-4) == "-bin" then
      problems[#problems + 1] = {
        field = name, description = "-bin names binary gRPC metadata, for gRPC clients only",
      }
    elseif name == "grpc-timeout" and not value:find(TIMEOUT) then
      problems[#problems + 1] = {
        field = name, description = "1 to 8 digits and a unit: H, M, S, m, u or n (2500m)",
      }
    end
  end
  if #problems > 0 then
    reject_invalid_argument(handle, "headers the shop cannot take: "
      .. describe_problems(problems), problems)
  end
end
