//! A small stderr logger: one line per event, `<RFC 3339 time> <LEVEL> <message>`.
//!
//! The level is the one piece of process-wide state: it is set once by `main` from the config and
//! read by every log call, which is cheaper and simpler than threading a logger through each layer.
//! Nothing that is logged may contain a token (see `auth`: only the token id is ever named).
//!
//! Info and debug lines (one per request) are batched: appended to a buffer that a background
//! thread writes out every `FLUSH_EVERY`, or sooner when it fills: a `write` system call per
//! request costs more than the rest of the line's work. Warnings and errors are written at once, after
//! whatever is buffered, so order is kept; `flush` runs at shutdown.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_AT_BYTES: usize = 32 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

pub fn write(level: Level, message: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let label = match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    };
    let now = crate::time::timestamp_bytes(time::OffsetDateTime::now_utc());
    let mut buffer = BUFFER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Straight into the buffer, piece by piece: no line allocated and copied per request, and the
    // message formatted at the top level, not nested in a second `format_args!` (the line is
    // written once per request). Writing to a Vec cannot fail.
    buffer.extend_from_slice(&now);
    buffer.push(b' ');
    buffer.extend_from_slice(label.as_bytes());
    buffer.push(b' ');
    let _ = buffer.write_fmt(message);
    buffer.push(b'\n');
    if level <= Level::Warn || buffer.len() >= FLUSH_AT_BYTES {
        write_out(&mut buffer);
    } else {
        start_flusher();
    }
}

/// Writes out whatever is buffered.
pub fn flush() {
    write_out(
        &mut BUFFER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
}

fn write_out(buffer: &mut Vec<u8>) {
    if !buffer.is_empty() {
        let _ = std::io::stderr().lock().write_all(buffer);
        buffer.clear();
    }
}

fn start_flusher() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            })
            .expect("spawning the log flusher");
    });
}

#[macro_export]
macro_rules! log_error { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! log_warn { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($arg)*)) } }
#[macro_export]
macro_rules! log_info { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($arg)*)) } }
