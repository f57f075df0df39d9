//! The per-token sliding-window rate limiter of SPEC section 3.
//!
//! For each key, the requests admitted in the last window, counted per slice of it (a 600th: 100 ms
//! of a minute). A slice's requests keep their slots until the latest of them leaves the window:
//! a lone request exactly as long as an exact log would keep it, requests that share a slice at
//! most one slice longer, never shorter, so no window anywhere in time admits more than `limit`.
//! `Retry-After` says when the oldest slice leaves, so it is never more than the window and waiting
//! that long always suffices. Refused requests are not recorded.
//!
//! Memory is at most 600 slices of 16 bytes per key active in the last window, whatever the
//! limit, where an exact log of instants would need 8 bytes per admitted request, growing with the
//! limit and the traffic. `sweep` drops keys idle
//! for a whole window and gives back room a burst left behind.
//!
//! Plain synchronous code that takes `now`, so tests drive the clock. The dashmap shard lock is
//! held only inside `check`, never across an `.await`.

use std::collections::VecDeque;
use std::hash::Hash;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Slices per window: the most a slot can be held past the exact moment is one of them.
const SLICES: u64 = 600;

pub struct RateLimiter<K: Eq + Hash> {
    limit: usize,
    /// The window and its slice, and every instant, in nanoseconds (instants since `base`).
    window: u64,
    slice: u64,
    base: Instant,
    windows: DashMap<K, Log>,
}

/// One key's admitted requests still in the window.
#[derive(Default)]
struct Log {
    /// `(when these requests leave the window, how many)`, one entry per slice, oldest first: a
    /// slice leaves with its latest request.
    slices: VecDeque<(u64, u32)>,
    /// The sum of the counts in `slices`.
    admitted: usize,
}

impl Log {
    fn expire(&mut self, now: u64) {
        while let Some(&(leaves, count)) = self.slices.front() {
            if leaves > now {
                break;
            }
            self.admitted -= count as usize;
            self.slices.pop_front();
        }
    }

    /// Records a request that leaves at `leaves`. It joins the newest slice if that slice's latest
    /// request was admitted in this request's slice, i.e. leaves at or after `slice_leaves` (when
    /// a request admitted at the slice's start would leave).
    fn admit(&mut self, leaves: u64, slice_leaves: u64) {
        match self.slices.back_mut() {
            Some((last, count)) if *last >= slice_leaves && *count < u32::MAX => {
                *last = leaves;
                *count += 1;
            }
            _ => self.slices.push_back((leaves, 1)),
        }
        self.admitted += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: usize,
    /// Requests still admitted in the current window, after this one.
    pub remaining: usize,
    /// Time until the next slot frees (when the oldest admitted slice leaves the window): at most
    /// the window.
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
        let window = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        RateLimiter {
            limit: limit as usize,
            window,
            slice: (window / SLICES).max(1),
            base: Instant::now(),
            windows: DashMap::new(),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window)
    }

    /// Admits and records one request for `key` at `now`, or refuses it without recording.
    pub fn check(&self, key: &K, now: Instant) -> Decision {
        let now = self.nanos(now);
        let mut entry = self.windows.entry(key.clone()).or_default();
        let log = entry.value_mut();
        log.expire(now);
        let allowed = log.admitted < self.limit;
        if allowed {
            let slice_start = now - now % self.slice;
            log.admit(
                now.saturating_add(self.window),
                slice_start.saturating_add(self.window),
            );
        }
        let (oldest, _) = *log
            .slices
            .front()
            .expect("an admitted or refused request leaves the log non-empty");
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit - log.admitted,
            reset_after: Duration::from_nanos(oldest - now),
        }
    }

    /// Whether `key` is out of slots at `now`, without recording anything: the refusal it would get.
    /// (Forgetting slices that have left the window is not recording: `check` would do the same.)
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Decision> {
        let now = self.nanos(now);
        let mut log = self.windows.get_mut(key)?;
        log.expire(now);
        if log.admitted < self.limit {
            return None;
        }
        let (oldest, _) = log.slices.front()?;
        Some(Decision {
            allowed: false,
            limit: self.limit,
            remaining: 0,
            reset_after: Duration::from_nanos(oldest - now),
        })
    }

    /// Forgets everything recorded for `key` (a sign-in that succeeded clears its email's count).
    pub fn forget(&self, key: &K) {
        self.windows.remove(key);
    }

    /// Forgets keys with no request in the last window; returns how many were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        let now = self.nanos(now);
        let before = self.windows.len();
        self.windows.retain(|_, log| {
            if log.slices.capacity() > 4 * log.slices.len().max(16) {
                log.slices.shrink_to_fit();
            }
            log.slices.back().is_some_and(|&(leaves, _)| leaves > now)
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
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MINUTE: Duration = Duration::from_secs(60);
    /// A 600th of a minute. Tests that depend on slices start their clock at the limiter's base,
    /// where a slice starts.
    const SLICE: Duration = Duration::from_millis(100);

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
    fn requests_in_one_slice_leave_with_the_latest() {
        let limiter = RateLimiter::new(2, MINUTE);
        let t0 = limiter.base;
        assert!(limiter.check(&"k", t0).allowed);
        assert!(limiter.check(&"k", t0 + SLICE / 2).allowed);
        // An exact log would free the t0 slot now; its slice keeps it until the t0 + 50 ms
        // request leaves: at most one slice late, never early.
        let refused = limiter.check(&"k", t0 + MINUTE);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, SLICE / 2);
        let freed = limiter.check(&"k", t0 + MINUTE + SLICE / 2);
        assert!(freed.allowed);
        assert_eq!(freed.remaining, 1, "both slots of the slice free together");
    }

    #[test]
    fn memory_per_key_does_not_grow_with_the_limit() {
        let limiter = RateLimiter::new(u32::MAX, MINUTE);
        let t0 = limiter.base;
        // A million requests spread over one minute: all admitted, in at most 600 slices.
        for i in 0..1_000_000u64 {
            assert!(
                limiter
                    .check(&0, t0 + Duration::from_micros(i * 60))
                    .allowed
            );
        }
        let log = limiter.windows.get(&0).unwrap();
        assert_eq!(log.admitted, 1_000_000);
        assert!(log.slices.len() <= SLICES as usize, "{}", log.slices.len());
    }

    proptest! {
        /// Whatever the arrival times: a request is admitted only if the exact window before it
        /// holds fewer than `limit`, so no 60-second window ever admits more; and it is refused
        /// only if the window stretched by one slice is full, so slots are held at most a slice
        /// too long. Retry-After never exceeds the window.
        #[test]
        fn no_window_admits_more_than_the_limit(
            limit in 1u32..8,
            gaps in prop::collection::vec(0u64..40_000, 1..200),
        ) {
            let limiter = RateLimiter::new(limit, MINUTE);
            let mut at = 0u64;
            let mut admitted: Vec<u64> = Vec::new();
            for gap in gaps {
                at += gap;
                let decision = limiter.check(&0, limiter.base + Duration::from_millis(at));
                let within = |span: u64| admitted.iter().filter(|&&t| t + span > at).count();
                prop_assert!(decision.reset_after <= MINUTE);
                if decision.allowed {
                    prop_assert!(within(60_000) < limit as usize);
                    admitted.push(at);
                } else {
                    prop_assert!(within(60_100) >= limit as usize);
                }
            }
        }
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
