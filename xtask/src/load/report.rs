//! The load benchmark's table: ratios against the goals of issue 17, and
//! every run's numbers.

use std::fmt::Write as _;

use super::wrk::{WrkStats, format_ms};
use super::{
    CONNECTIONS, FLOOD_CONNECTIONS, GOAL_FLOOD_P99_MS, GOAL_FLOOD_VS_IDLE, GOAL_HEALTH_VS_BARE,
    GOAL_ME_VS_BARE, GOAL_VS_FASTAPI, PROBE_CONNECTIONS, RATE_LIMIT, THREADS, WARM_UP_SECONDS,
};

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// Everything one run measured.
pub(super) struct Report {
    pub(super) seconds: u64,
    pub(super) cores: usize,
    pub(super) load_before: String,
    pub(super) load_after: String,
    pub(super) accounts: usize,
    pub(super) bare_health: WrkStats,
    /// Bare axum answering with palisade-server's `/health/live` bytes.
    pub(super) floor_health: WrkStats,
    pub(super) palisade_health: WrkStats,
    pub(super) fastapi_health: WrkStats,
    pub(super) bare_me: WrkStats,
    pub(super) palisade_me: WrkStats,
    pub(super) fastapi_me: WrkStats,
    pub(super) idle: WrkStats,
    pub(super) flooded: WrkStats,
    pub(super) flood: WrkStats,
}

impl Report {
    pub(super) fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# palisade-server load benchmark\n");
        let _ = writeln!(
            md,
            "wrk -t{THREADS} -c{CONNECTIONS}, {WARM_UP_SECONDS}s warm-up then {}s measured per row; \
             {} cores; load average {} before, {} after. palisade-server: release build, \
             development profile, memory stores, `PALISADE_RATE_LIMIT` and \
             `PALISADE_SUBJECT_RATE_LIMIT` both {RATE_LIMIT} (the per-IP and per-subject limits \
             run on every request but never refuse one, so this measures the stack, not 429s); \
             `/me` spread over {} accounts. \
             FastAPI: uvicorn, {} workers, slowapi (limit far above the load), security-header \
             middleware, PyJWT HS256.\n",
            self.seconds, self.cores, self.load_before, self.load_after, self.accounts, self.cores,
        );
        let _ = writeln!(
            md,
            "| measure | palisade | against | ratio | goal | result |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
        let rps = |stats: &WrkStats| format!("{:.0} req/s", stats.requests_per_second);
        let share = |ours: &WrkStats, theirs: &WrkStats| {
            ours.requests_per_second / theirs.requests_per_second
        };
        let health_share = share(&self.palisade_health, &self.bare_health);
        let _ = writeln!(
            md,
            "| GET /health/live vs bare axum | {} | {} | {:.0}% | ≥ {:.0}% | {} |",
            rps(&self.palisade_health),
            rps(&self.bare_health),
            health_share * 100.0,
            GOAL_HEALTH_VS_BARE * 100.0,
            verdict(health_share >= GOAL_HEALTH_VS_BARE)
        );
        let me_share = share(&self.palisade_me, &self.bare_me);
        let _ = writeln!(
            md,
            "| GET /me (Bearer) vs bare axum hello | {} | {} | {:.0}% | ≥ {:.0}% | {} |",
            rps(&self.palisade_me),
            rps(&self.bare_me),
            me_share * 100.0,
            GOAL_ME_VS_BARE * 100.0,
            verdict(me_share >= GOAL_ME_VS_BARE)
        );
        for (route, ours, theirs) in [
            (
                "GET /health/live",
                &self.palisade_health,
                &self.fastapi_health,
            ),
            ("GET /me (Bearer)", &self.palisade_me, &self.fastapi_me),
        ] {
            let times = share(ours, theirs);
            let _ = writeln!(
                md,
                "| {route} vs FastAPI | {} | {} | {times:.1}× | ≥ {GOAL_VS_FASTAPI:.0}× | {} |",
                rps(ours),
                rps(theirs),
                verdict(times >= GOAL_VS_FASTAPI)
            );
        }
        let flood_p99 = self.flooded.p99_ms.unwrap_or(f64::INFINITY);
        let idle_p99 = self.idle.p99_ms.unwrap_or(f64::INFINITY);
        let _ = writeln!(
            md,
            "| /health/live p99 during login flood | {} | — | — | < {GOAL_FLOOD_P99_MS:.0} ms | {} |",
            format_ms(self.flooded.p99_ms),
            verdict(flood_p99 < GOAL_FLOOD_P99_MS)
        );
        let growth = flood_p99 / idle_p99;
        let _ = writeln!(
            md,
            "| /health/live p99 flood vs idle | {} | {} | {growth:.1}× | ≤ {GOAL_FLOOD_VS_IDLE:.0}× | {} |",
            format_ms(self.flooded.p99_ms),
            format_ms(self.idle.p99_ms),
            verdict(growth <= GOAL_FLOOD_VS_IDLE)
        );
        self.ceilings(&mut md);
        let _ = writeln!(md, "\n## Runs\n");
        let _ = writeln!(
            md,
            "| run | req/s | requests | p50 | p99 | non-2xx | socket errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
        for (name, stats) in [
            ("bare axum GET /health/live", &self.bare_health),
            (
                "bare axum with palisade-server's headers GET /health/live",
                &self.floor_health,
            ),
            ("palisade-server GET /health/live", &self.palisade_health),
            ("FastAPI GET /health/live", &self.fastapi_health),
            ("bare axum GET /me", &self.bare_me),
            ("palisade-server GET /me", &self.palisade_me),
            ("FastAPI GET /me", &self.fastapi_me),
            ("palisade-server /health/live probe, idle", &self.idle),
            (
                "palisade-server /health/live probe, login flood",
                &self.flooded,
            ),
            ("login flood POST /auth/login", &self.flood),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {:.0} | {} | {} | {} | {} | {} |",
                stats.requests_per_second,
                stats.requests,
                format_ms(stats.p50_ms),
                format_ms(stats.p99_ms),
                stats.non_2xx,
                stats.socket_errors.as_deref().unwrap_or("none")
            );
        }
        let _ = writeln!(
            md,
            "\nThe probe is wrk -t1 -c{PROBE_CONNECTIONS}, each connection pausing 10 ms between \
             requests. The flood is wrk -t1 -c{FLOOD_CONNECTIONS} posting valid credentials of \
             the accounts above from 4096 `X-Forwarded-For` addresses (loopback is a trusted \
             proxy for this run), with `PALISADE_LOGIN_RATE_LIMIT={RATE_LIMIT}`, so attempts \
             reach the hashing pool and the login throttle: the pool verifies what it can \
             (200) and refuses the rest with a 503 held `PALISADE_HASH_BUSY_DELAY` (250 ms by \
             default) before it is sent, and before the throttle counts the attempt; the \
             throttle charges each attempt it lets through to its address and \
             account until it succeeds, so accounts whose attempts wait their turn past \
             their budget are slowed down (429). Flood answers by status: {}.",
            self.flood.statuses.as_deref().unwrap_or("not counted")
        );
        md
    }

    /// What the machine allows, from the same run: the share of a bare
    /// hello that bare axum keeps when it sends palisade-server's bytes, what
    /// Palisade's layers cost on top of that, and how far bare axum itself
    /// is ahead of FastAPI (a ratio over FastAPI no axum service can pass here).
    fn ceilings(&self, md: &mut String) {
        // A run that answered nothing reads as 0, not as infinity.
        let share = |ours: &WrkStats, theirs: &WrkStats| {
            if theirs.requests_per_second > 0.0 {
                ours.requests_per_second / theirs.requests_per_second
            } else {
                0.0
            }
        };
        let floor = share(&self.floor_health, &self.bare_health);
        let layers = share(&self.palisade_health, &self.floor_health);
        let ceiling = share(&self.bare_health, &self.fastapi_health);
        let ceiling_me = share(&self.bare_me, &self.fastapi_me);
        let _ = writeln!(md, "\n## What this machine allows\n");
        let _ = writeln!(md, "| measure | req/s | against | ratio |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let _ = writeln!(
            md,
            "| bare axum sending palisade-server's `/health/live` bytes (the floor) vs bare axum hello | {:.0} | {:.0} | {:.0}% |",
            self.floor_health.requests_per_second,
            self.bare_health.requests_per_second,
            floor * 100.0
        );
        let _ = writeln!(
            md,
            "| palisade-server GET /health/live vs that floor (the layers' cost) | {:.0} | {:.0} | {:.0}% |",
            self.palisade_health.requests_per_second,
            self.floor_health.requests_per_second,
            layers * 100.0
        );
        let _ = writeln!(
            md,
            "| bare axum hello vs FastAPI, GET /health/live | {:.0} | {:.0} | {ceiling:.1}× |",
            self.bare_health.requests_per_second, self.fastapi_health.requests_per_second,
        );
        let _ = writeln!(
            md,
            "| bare axum hello vs FastAPI, GET /me | {:.0} | {:.0} | {ceiling_me:.1}× |",
            self.bare_me.requests_per_second, self.fastapi_me.requests_per_second,
        );
        let _ = writeln!(
            md,
            "\nThe floor sends the very bytes palisade-server sends (the security headers, \
             `Vary`, a request id, the JSON body) and does nothing else: the share of the bare \
             hello it keeps is the most any service answering with those headers gets on \
             this machine, where wrk shares the {} cores and parses every header. A goal over \
             that share cannot be met by any stack that sends them. Bare axum's own lead over \
             FastAPI is likewise the most any axum service can show against FastAPI in this run.",
            self.cores
        );
    }
}
