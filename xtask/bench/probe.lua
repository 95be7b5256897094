-- `cargo xtask bench load`: a paced GET /health/live probe for the latency
-- runs. Each connection waits `delay` ms between requests, so the probe
-- itself does not saturate the server and its p99 shows queueing caused by
-- other work (the login flood), not by the probe.

function delay()
  return 10
end
