//! The per-token sliding-window rate limiter of SPEC section 3.
//!
//! A sliding log: for each token hash, the instants of the requests admitted in the last window.
//! A request is admitted while fewer than `limit` remain in the window, so a slot frees exactly
//! when the oldest admitted request leaves it, and `Retry-After` can say precisely when. Refused
//! requests are not recorded. Memory is at most `limit` instants of 8 bytes (nanoseconds since the
//! limiter was made: exact, and half the size of an `Instant`) per token active in the last
//! window; `sweep` drops tokens idle for a whole window and gives back room a burst left behind.
//!
//! Plain synchronous code that takes `now`, so tests drive the clock. The dashmap shard lock is
//! held only inside `check`, never across an `.await`.

use std::collections::VecDeque;
use std::hash::Hash;
use std::time::{Duration, Instant};

use dashmap::DashMap;

pub struct RateLimiter<K: Eq + Hash> {
    limit: usize,
    /// The window, and every instant, in nanoseconds (instants since `base`).
    window: u64,
    base: Instant,
    windows: DashMap<K, VecDeque<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: usize,
    /// Requests still admitted in the current window, after this one.
    pub remaining: usize,
    /// Time until the next slot frees (when the oldest admitted request leaves the window).
    pub reset_after: Duration,
}

impl Decision {
    /// `reset_after` in whole seconds, rounded up: waiting that long always suffices.
    pub fn reset_after_secs(&self) -> u64 {
        let secs = self.reset_after.as_secs() + u64::from(self.reset_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(limit: u32, window: Duration) -> RateLimiter<K> {
        assert!(limit > 0, "a rate limit admits at least one request");
        RateLimiter {
            limit: limit as usize,
            window: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            base: Instant::now(),
            windows: DashMap::new(),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a request admitted at `at` still counts at `now`.
    fn in_window(&self, at: u64, now: u64) -> bool {
        now.saturating_sub(at) < self.window
    }

    /// The time from `now` until the request admitted at `oldest` leaves the window.
    fn until_free(&self, oldest: u64, now: u64) -> Duration {
        Duration::from_nanos(oldest.saturating_add(self.window).saturating_sub(now))
    }

    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window)
    }

    /// Admits and records one request for `key` at `now`, or refuses it without recording.
    pub fn check(&self, key: &K, now: Instant) -> Decision {
        let now = self.nanos(now);
        let mut entry = self.windows.entry(key.clone()).or_default();
        let log = entry.value_mut();
        while log
            .front()
            .is_some_and(|&oldest| !self.in_window(oldest, now))
        {
            log.pop_front();
        }
        let allowed = log.len() < self.limit;
        if allowed {
            log.push_back(now);
        }
        let oldest = *log
            .front()
            .expect("an admitted or refused request leaves the log non-empty");
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit - log.len(),
            reset_after: self.until_free(oldest, now),
        }
    }

    /// Whether `key` is out of slots at `now`, without recording anything: the refusal it would get.
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Decision> {
        let now = self.nanos(now);
        let log = self.windows.get(key)?;
        // The log is in order: the requests still in the window are its tail.
        let expired = log.partition_point(|&at| !self.in_window(at, now));
        if log.len() - expired < self.limit {
            return None;
        }
        Some(Decision {
            allowed: false,
            limit: self.limit,
            remaining: 0,
            reset_after: self.until_free(log[expired], now),
        })
    }

    /// Forgets keys with no request in the last window; returns how many were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        let now = self.nanos(now);
        let before = self.windows.len();
        self.windows.retain(|_, log| {
            if log.capacity() > 4 * log.len().max(16) {
                log.shrink_to_fit();
            }
            log.back()
                .is_some_and(|&newest| self.in_window(newest, now))
        });
        before - self.windows.len()
    }

    /// Keys currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let limiter = RateLimiter::new(3, MINUTE);
        let t0 = Instant::now();
        let remaining: Vec<usize> = (0..3).map(|_| limiter.check(&1, t0).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(&1, t0 + Duration::from_secs(1));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_after, Duration::from_secs(59));
        assert_eq!(refused.reset_after_secs(), 59);
    }

    #[test]
    fn window_slides_exactly_when_the_oldest_request_leaves() {
        let limiter = RateLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        assert!(limiter.check(&"k", t0).allowed);
        assert!(limiter.check(&"k", t0 + Duration::from_secs(30)).allowed);
        let just_before = t0 + MINUTE - Duration::from_millis(1);
        let refused = limiter.check(&"k", just_before);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_millis(1));
        assert_eq!(
            refused.reset_after_secs(),
            1,
            "Retry-After is at least one whole second"
        );
        // The oldest request (t0) leaves the window at t0 + 60 s: one slot, not two.
        let at_edge = limiter.check(&"k", t0 + MINUTE);
        assert!(at_edge.allowed);
        assert_eq!(at_edge.remaining, 0);
        // Next slot frees when the t0+30s request leaves: exactly 30 s later.
        let refused = limiter.check(&"k", t0 + MINUTE);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_secs(30));
        assert!(
            limiter
                .check(&"k", t0 + MINUTE + Duration::from_secs(30))
                .allowed
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let limiter = RateLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        limiter.check(&0, t0);
        let refused = limiter.check(&0, t0 + Duration::from_millis(100));
        assert_eq!(refused.reset_after, Duration::from_millis(59_900));
        assert_eq!(refused.reset_after_secs(), 60);
    }

    #[test]
    fn refused_requests_do_not_count() {
        let limiter = RateLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        assert!(limiter.check(&0, t0).allowed);
        for second in 1..60 {
            assert!(!limiter.check(&0, t0 + Duration::from_secs(second)).allowed);
        }
        // Had the refusals been recorded, the window would still be full here.
        assert!(limiter.check(&0, t0 + MINUTE).allowed);
    }

    #[test]
    fn blocked_peeks_without_recording() {
        let limiter = RateLimiter::new(2, MINUTE);
        let t0 = Instant::now();
        assert!(limiter.blocked(&"ip", t0).is_none());
        limiter.check(&"ip", t0);
        assert!(limiter.blocked(&"ip", t0).is_none());
        limiter.check(&"ip", t0 + Duration::from_secs(10));
        let refusal = limiter
            .blocked(&"ip", t0 + Duration::from_secs(20))
            .unwrap();
        assert_eq!(refusal.reset_after, Duration::from_secs(40));
        // Peeking again changes nothing, and the window still slides.
        assert!(
            limiter
                .blocked(&"ip", t0 + Duration::from_secs(20))
                .is_some()
        );
        assert!(limiter.blocked(&"ip", t0 + MINUTE).is_none());
    }

    #[test]
    fn keys_have_separate_windows() {
        let limiter = RateLimiter::new(1, MINUTE);
        let t0 = Instant::now();
        assert!(limiter.check(&"a", t0).allowed);
        assert!(!limiter.check(&"a", t0).allowed);
        assert!(limiter.check(&"b", t0).allowed);
    }

    #[test]
    fn idle_keys_are_reclaimed() {
        let limiter = RateLimiter::new(5, MINUTE);
        let t0 = Instant::now();
        for key in 0..1000 {
            limiter.check(&key, t0);
        }
        limiter.check(&5000, t0 + Duration::from_secs(30));
        assert_eq!(limiter.tracked(), 1001);
        assert_eq!(limiter.sweep(t0 + Duration::from_secs(59)), 0);
        assert_eq!(limiter.sweep(t0 + MINUTE), 1000);
        assert_eq!(limiter.tracked(), 1);
        assert_eq!(limiter.sweep(t0 + Duration::from_secs(90)), 1);
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn many_threads_never_get_more_than_the_limit() {
        let limiter = Arc::new(RateLimiter::new(100, MINUTE));
        let admitted = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, admitted) = (limiter.clone(), admitted.clone());
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        if limiter.check(&"hot", t0 + Duration::from_micros(i)).allowed {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(admitted.load(Ordering::Relaxed), 100);
    }
}
