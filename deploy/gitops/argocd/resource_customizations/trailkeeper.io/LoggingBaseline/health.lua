-- Argo CD health of a trailkeeper.io resource (LoggingBaseline, LoggingBaselineSet, LogArchive,
-- TrailPolicy, RetentionPolicy). The same file for every kind; deploy/gitops/argocd/README.md says
-- how to install it. Argo CD runs it with gopher-lua (Lua 5.1): `obj` is the resource.
--   Progressing: being deleted (the finalizer runs the deletionPolicy), a generation the
--     controller has not observed yet, Reconciling=True, or a Ready=False that the next retry may
--     fix (waiting for a dependency, throttled, timed out, AWS unavailable).
--   Degraded: Stalled=True (an error no retry fixes: AccessDenied, WrongAccount,
--     PreconditionFailed, Conflict, InvalidSpec, ...), any other Ready=False, or logs that are not
--     delivered (DeliveryHealthy=False) or failed integrity verification.
--   Healthy: Ready=True; or a policy without status (a CRD older than the policies' status).
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function says(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return fallback
end

-- Reasons of Ready=False that a later retry may clear by itself.
local transient = {
  WaitingForDependency = true, Throttled = true, Timeout = true, AwsUnavailable = true,
  Reconciling = true, AwaitingFirstDelivery = true, WaitingForLogArchive = true,
}

local status = obj.status
local generation = obj.metadata.generation

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: trailkeeper runs the deletionPolicy before it lets the object go"
  return hs
end

if obj.kind == "TrailPolicy" or obj.kind == "RetentionPolicy" then
  if status == nil or status.observedGeneration == nil then
    hs.status = "Healthy"
    hs.message = "A policy: the baselines that use it report whether it is applied"
    return hs
  end
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for trailkeeper to reconcile it"
  return hs
end

if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for trailkeeper to observe generation " .. generation
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = says(stalled, "Stalled")
  return hs
end

local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" and (ready == nil or ready.status ~= "True") then
  hs.status = "Progressing"
  hs.message = says(reconciling, "Reconciling")
  return hs
end

if ready == nil or ready.status == "Unknown" then
  if obj.kind == "TrailPolicy" or obj.kind == "RetentionPolicy" then
    hs.status = "Healthy"
    hs.message = "A policy: the baselines that use it report whether it is applied"
    return hs
  end
  hs.status = "Progressing"
  hs.message = says(ready, "Waiting for the first reconcile")
  return hs
end

if ready.status == "False" then
  if ready.reason ~= nil and transient[ready.reason] then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = says(ready, "Not ready")
  return hs
end

local delivery = condition(status, "DeliveryHealthy")
if delivery ~= nil and delivery.status == "False" then
  hs.status = "Degraded"
  hs.message = "Logs not delivered: " .. says(delivery, "DeliveryHealthy is False")
  return hs
end

if status.integrity ~= nil and status.integrity.valid == false then
  hs.status = "Degraded"
  hs.message = "Integrity verification failed: see status.integrity"
  return hs
end

hs.status = "Healthy"
hs.message = says(ready, "Ready")
return hs
