-- An anonymous submit per request: POST a new comment whose body and e-mail are
-- unique per run, thread and request. Arguments (after `--`): the form token, a run
-- nonce and, optionally, an address block (0-255): each request then comes from its
-- own client address 10.<block + thread>.x.y (X-Forwarded-For, for a server that
-- trusts one proxy), so that the default abuse limits (per address and per e-mail)
-- are at work without refusing the load, and carries an Idempotency-Key, as the
-- widget sends every comment.
-- Counts the answers by status so the runner can tell 202s from anything else.

local counter = 0
local token, nonce, block = "", "run", nil
local text = "I read the whole piece twice. The *numbers* on page two do not add up, "
  .. "and the quote from the ministry is from last year. Still, a **useful** summary; "
  .. "thanks for putting the timeline together, it helps to see the sequence of events "
  .. "in one place."
statuses = {}

function init(args)
  token = args[1] or ""
  nonce = args[2] or "run"
  block = tonumber(args[3])
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"author_name": "Bench reader %d", "author_email": "bench-%s-%d-%d@example.com", '
      .. '"body": "Comment %s-%d-%d. %s", "form_token": "%s", "website": ""}',
    id, nonce, id, counter, nonce, id, counter, text, token)
  local headers = { ["Content-Type"] = "application/json" }
  if block then
    headers["X-Forwarded-For"] = string.format(
      "10.%d.%d.%d", (block + id) % 256, math.floor(counter / 256) % 256, counter % 256)
    headers["Idempotency-Key"] = string.format("%s-%d-%d", nonce, id, counter)
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
