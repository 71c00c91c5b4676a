-- wrk script: POST /register with a valid CSRF token and session cookie (fetched once by
-- bench/run.py and passed in the environment) and a new e-mail address on every request.
local token = os.getenv("NECREG_BENCH_CSRF")
local cookie = os.getenv("NECREG_BENCH_COOKIE")
local run = os.getenv("NECREG_BENCH_RUN") or "0"
local roles = {"clinician", "clinician", "clinician", "scientist", "scientist", "family", "advocate"}
local counter = 0

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end

function request()
  counter = counter + 1
  local email = string.format("bench-%s-%d-%d@example.org", run, thread_id, counter)
  local role = roles[(counter % #roles) + 1]
  local body = "csrf_token=" .. token
    .. "&first_name=Bench&last_name=Runner" .. counter
    .. "&email=" .. email
    .. "&role=" .. role
    .. "&institution=Benchmark+Hospital+" .. (counter % 300)
    .. "&country=US&consent=y"
  return wrk.format("POST", "/register", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie,
  }, body)
end
