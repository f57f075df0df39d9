//! Secrets made on a settings page (a new token, a webhook's new signing secret), held in memory
//! (never on disk) for the one page view that shows them: the form's POST puts one here and
//! redirects, the page the redirect lands on takes it (Post/Redirect/Get), so neither a reload
//! nor the browser's history shows it again or makes another.

use std::time::{Duration, Instant};

use dashmap::DashMap;

/// How long a secret waits for the page that shows it.
const WAITS_FOR: Duration = Duration::from_secs(5 * 60);

/// What is waiting, by the session's hash: everything made since that session's last view of the
/// page (two tabs may each make one).
pub struct ShownOnce<T> {
    waiting: DashMap<[u8; 32], Vec<(T, Instant)>>,
}

impl<T> Default for ShownOnce<T> {
    fn default() -> ShownOnce<T> {
        ShownOnce {
            waiting: DashMap::new(),
        }
    }
}

impl<T> ShownOnce<T> {
    pub(super) fn put(&self, session: [u8; 32], secret: T) {
        self.waiting
            .entry(session)
            .or_default()
            .push((secret, Instant::now()));
    }

    /// Everything waiting for this session, oldest first; none of it is shown again.
    pub(super) fn take(&self, session: &[u8; 32]) -> Vec<T> {
        let Some((_, waiting)) = self.waiting.remove(session) else {
            return Vec::new();
        };
        waiting
            .into_iter()
            .filter(|(_, made)| made.elapsed() < WAITS_FOR)
            .map(|(secret, _)| secret)
            .collect()
    }

    /// Forgets secrets nobody came to see.
    pub fn sweep(&self) {
        self.waiting.retain(|_, waiting| {
            waiting.retain(|(_, made)| made.elapsed() < WAITS_FOR);
            !waiting.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_taken_once_and_only_by_its_session() {
        let shown = ShownOnce::default();
        shown.put([1; 32], "first");
        shown.put([1; 32], "second tab");
        shown.put([2; 32], "someone else's");
        assert!(shown.take(&[3; 32]).is_empty());
        assert_eq!(shown.take(&[1; 32]), ["first", "second tab"]);
        assert!(shown.take(&[1; 32]).is_empty(), "shown once");
        shown.sweep();
        assert_eq!(shown.take(&[2; 32]), ["someone else's"]);
    }
}
