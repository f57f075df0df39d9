//! Reading a request body within its limits: its size, its deadline and its minimum rate.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};

use crate::config::Config;
use crate::error::Error;

/// What a request body must stay within: its size, its deadline, its minimum average rate.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
    /// Bytes per second on average once `grace` is over; 0 for no minimum.
    pub min_rate: u64,
    pub grace: Duration,
}

impl BodyLimits {
    pub fn from_config(config: &Config) -> BodyLimits {
        BodyLimits {
            max_bytes: config.limits.max_body_bytes,
            timeout: config.body_read_timeout(),
            min_rate: config.server.body_min_bytes_per_sec,
            grace: crate::config::BODY_RATE_GRACE,
        }
    }

    /// When a body that has `received` bytes so far, started at `started`, falls below the
    /// minimum rate (or reaches the deadline, whichever is first).
    fn due(&self, started: Instant, received: usize) -> Instant {
        let deadline = started + self.timeout;
        if self.min_rate == 0 {
            return deadline;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        (started + earned.max(self.grace)).min(deadline)
    }
}

/// Reads the body within `limits`: 413 past its size (at once when `Content-Length` says so),
/// 408 when it is not all there by the deadline or arrives slower than the minimum rate. Without
/// this, a client could announce a large body and trickle it, holding a connection for ever.
pub async fn read_body(mut body: Incoming, limits: &BodyLimits) -> Result<Bytes, Error> {
    use hyper::body::Body as _;
    let too_large = Error::PayloadTooLarge {
        limit: limits.max_bytes,
    };
    // Most requests (every GET) have no body: no timer, no buffer.
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    if body.size_hint().lower() > limits.max_bytes as u64 {
        return Err(too_large);
    }
    let started = Instant::now();
    let mut received = 0;
    let mut collected: Vec<u8> = Vec::new();
    let mut first: Option<Bytes> = None;
    loop {
        let due = tokio::time::Instant::from_std(limits.due(started, received));
        let frame = match tokio::time::timeout_at(due, body.frame()).await {
            Err(_elapsed) => return Err(Error::RequestTimeout),
            Ok(None) => break,
            // The client went away or sent a broken body: nothing to answer, but answer anyway.
            Ok(Some(Err(error))) => {
                return Err(Error::InvalidJson(format!(
                    "could not read the request body: {error}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len();
        if received > limits.max_bytes {
            return Err(too_large);
        }
        // A body in one frame (the usual case) is kept as it came, without a copy.
        match first.take() {
            None if collected.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    collected.extend_from_slice(&earlier);
                }
                collected.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(collected)))
}
