-- An anonymous submit per request: POST a new comment whose body is unique per
-- run, thread and request. Arguments (after `--`): the form token, a run nonce.
-- Counts the answers by status so the runner can tell 202s from anything else.

local counter = 0
local token, nonce = "", "run"
local headers = { ["Content-Type"] = "application/json" }
local text = "I read the whole piece twice. The *numbers* on page two do not add up, "
  .. "and the quote from the ministry is from last year. Still, a **useful** summary; "
  .. "thanks for putting the timeline together, it helps to see the sequence of events "
  .. "in one place."
statuses = {}

function init(args)
  token = args[1] or ""
  nonce = args[2] or "run"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"author_name": "Bench reader %d", "author_email": "bench-%d@example.com", '
      .. '"body": "Comment %s-%d-%d. %s", "form_token": "%s", "website": ""}',
    id, id, nonce, id, counter, text, token)
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
