-- wrk script for tests/e2e/scale_out.sh: a mixed load of POST /loss/mse and POST /train,
-- every response checked for status 200 AND for the exact answer, counted per thread and
-- summed in done() into one line the shell script parses:
--   LUA_SUMMARY loss_ok=.. train_short_ok=.. train_long_ok=.. bad_status=.. bad_body=..

-- mse of a = [0.5, 1.5, 2, -1] against y = [0, 1, 2.5, -1]: (0.25 + 0.25 + 0.25 + 0) / 4
-- = 0.1875, exactly representable, so the printed number is exactly "0.1875".
local loss_body = '{"predictions":[0.5,1.5,2.0,-1.0],"targets":[0.0,1.0,2.5,-1.0]}'

-- API.md's textbook neuron (sigmoid, l2, w0 = ln 9, lr 0.2, stop loss_below 0.001,
-- bias frozen): the book says it stops after 287 updates.
local train_short_body = '{"inputs":[[1]],"targets":[0.5],"activation":"sigmoid","loss":"l2",'
    .. '"init":{"weights":2.1972245773362196,"bias":0},"use_bias":false,"learning_rate":0.2,'
    .. '"max_iterations":1000,"stop":{"loss_below":0.001},"trace_every":0}'

-- A longer run (milliseconds, not microseconds) so that requests are in flight when a
-- replica dies: 20 000 full-batch updates on 8 samples, no stop rule can end it early.
local train_long_body = '{"inputs":[[0.1],[0.2],[0.3],[0.4],[0.5],[0.6],[0.7],[0.8]],'
    .. '"targets":[0.3,0.5,0.7,0.9,1.1,1.3,1.5,1.7],"loss":"mse","learning_rate":0.01,'
    .. '"max_iterations":20000,"trace_every":0}'

local requests = {}
-- Global, not local: done() reads it from each thread with thread:get("counters").
counters = { loss_ok = 0, train_short_ok = 0, train_long_ok = 0, bad_status = 0, bad_body = 0 }
local threads = {}
local n = 0
local bad_examples = 0

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local headers = { ["Content-Type"] = "application/json" }
    -- 2 : 1 : 1 mix of /loss, short /train, long /train.
    requests = {
        wrk.format("POST", "/loss/mse", headers, loss_body),
        wrk.format("POST", "/train", headers, train_short_body),
        wrk.format("POST", "/loss/mse", headers, loss_body),
        wrk.format("POST", "/train", headers, train_long_body),
    }
end

function request()
    n = n + 1
    return requests[(n % #requests) + 1]
end

function response(status, headers, body)
    if status ~= 200 then
        counters.bad_status = counters.bad_status + 1
        if bad_examples < 5 then
            bad_examples = bad_examples + 1
            io.write("LUA_BAD status=" .. status .. " body=" .. string.sub(body or "", 1, 200) .. "\n")
        end
        return
    end
    if string.find(body, '"kind"%s*:%s*"mse"') and string.find(body, '"loss"%s*:%s*0%.1875[,}]') then
        counters.loss_ok = counters.loss_ok + 1
    elseif string.find(body, '"iterations"%s*:%s*287[,}]') and string.find(body, '"stop_reason"%s*:%s*"loss_below"') then
        counters.train_short_ok = counters.train_short_ok + 1
    elseif string.find(body, '"iterations"%s*:%s*20000[,}]') and string.find(body, '"stop_reason"%s*:%s*"max_iterations"') then
        counters.train_long_ok = counters.train_long_ok + 1
    else
        counters.bad_body = counters.bad_body + 1
        if bad_examples < 5 then
            bad_examples = bad_examples + 1
            io.write("LUA_BAD status=200 body=" .. string.sub(body or "", 1, 200) .. "\n")
        end
    end
end

function done(summary, latency, reqs)
    local total = { loss_ok = 0, train_short_ok = 0, train_long_ok = 0, bad_status = 0, bad_body = 0 }
    for _, t in ipairs(threads) do
        local c = t:get("counters")
        for k, _ in pairs(total) do
            total[k] = total[k] + c[k]
        end
    end
    io.write(string.format(
        "LUA_SUMMARY loss_ok=%d train_short_ok=%d train_long_ok=%d bad_status=%d bad_body=%d\n",
        total.loss_ok, total.train_short_ok, total.train_long_ok, total.bad_status, total.bad_body))
    io.write(string.format(
        "WRK_SUMMARY requests=%d connect=%d read=%d write=%d timeout=%d non2xx3xx=%d\n",
        summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
        summary.errors.timeout, summary.errors.status))
end
