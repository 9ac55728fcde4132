"""``wrk`` driven from Python: a Lua script that posts access requests and keeps every answer,
and the parsing of wrk's ``--latency`` report (``api_scale`` runs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Each wrk thread has its own Lua state: it counts what it sent and what came back, and keeps
# the leaf index and decision of every 201; `done` (in the main state) gathers them into a file.
LUA = """
local bodies = {{
{bodies}
}}
local token = [==[{token}]==]
local out_path = [==[{out_path}]==]
local threads = {{}}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent, answered, others = 0, 0, 0
  answers = {{}}
  local headers = {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }}
  requests = {{}}
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/v1/access-requests", headers, body)
  end
  -- Threads start at different residents, so that they do not ask about the same one together.
  position = (id * 97) % #requests
end

function request()
  sent = sent + 1
  position = position % #requests + 1
  return requests[position]
end

function response(status, headers, body)
  if status == 201 then
    answered = answered + 1
    -- The decision's own leaf, not a relied-on consent's: it is the one followed by "at".
    local leaf = body:match('"leaf_index":%s*(%d+)%s*,%s*"at"')
    local decision = body:match('"decision":%s*"(%a+)"')
    answers[#answers + 1] = leaf .. " " .. decision
  else
    others = others + 1
  end
end

function done(summary, latency, requests)
  local file = io.open(out_path, "w")
  for _, thread in ipairs(threads) do
    file:write("thread ", thread:get("sent"), " ", thread:get("answered"), " ",
               thread:get("others"), "\\n")
    for _, answer in ipairs(thread:get("answers")) do
      file:write(answer, "\\n")
    end
  end
  file:close()
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    responses: int
    non_2xx: int
    socket_errors: int
    output: str


def parse_wrk(output: str) -> WrkResult:
    """Requests/s and latency percentiles from wrk's ``--latency`` report."""

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
        if match is None:
            raise ValueError(f"no {percent}% latency in wrk's output:\n{output}")
        return float(match.group(1)) * _UNITS[match.group(2)]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rate is None or total is None:
        raise ValueError(f"no request rate in wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        responses=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        output=output,
    )


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> WrkResult:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", "30s"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 120
    )
    return parse_wrk(done.stdout)
