//! Timestamps and calendar dates in the API's formats.
//!
//! Timestamps are RFC 3339 UTC with milliseconds (`2026-11-27T20:00:00.000Z`), always this exact
//! width, so that SQLite compares them correctly as text. Dates are `YYYY-MM-DD` real calendar days.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

pub fn now() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

/// The clock as Unix milliseconds (webhook retry times).
pub fn now_unix_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds as a timestamp; out of `time`'s range, the nearest end of it.
pub fn from_unix_ms(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(
        if ms < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            time::macros::datetime!(9999-12-31 23:59:59.999 UTC)
        },
    );
    format_timestamp(at)
}

/// `now` plus seconds.
pub fn secs_from_now(secs: i64) -> String {
    format_timestamp(OffsetDateTime::now_utc() + time::Duration::seconds(secs))
}

/// `now` plus whole days, for token expiry.
pub fn days_from_now(days: u32) -> String {
    format_timestamp(OffsetDateTime::now_utc() + time::Duration::days(days.into()))
}

/// `at` in UTC, `2026-11-27T20:00:00.000Z`. Written out digit by digit: it runs several times per
/// request (auth, the log line), and `format!` with padding showed in the profile; the
/// format-description path cost ten times that. The test below pins it to the format description.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    String::from_utf8(timestamp_bytes(at).to_vec()).expect("digits and ASCII punctuation")
}

/// `format_timestamp` without the `String`, for the log line.
pub fn timestamp_bytes(at: OffsetDateTime) -> [u8; 24] {
    let at = at.to_offset(UtcOffset::UTC);
    let (hour, minute, second, millisecond) = at.to_hms_milli();
    // `time` stops at year 9999, and a year before 0 comes from no clock and no 4-digit input.
    let year = u32::try_from(at.year()).unwrap_or(0);
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |start: usize, width: usize, mut value: u32| {
        for slot in text[start..start + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u8::from(at.month()).into());
    put(8, 2, at.day().into());
    put(11, 2, hour.into());
    put(14, 2, minute.into());
    put(17, 2, second.into());
    put(20, 3, millisecond.into());
    text
}

/// Parses any RFC 3339 timestamp (any offset, any precision) into our canonical form. `None` also
/// for one whose UTC time falls outside the years 0000-9999 the canonical form can write
/// (`9999-12-31T23:00:00-05:00` is in the year 10000 in UTC): shifting it is checked, never a panic.
pub fn parse_timestamp(text: &str) -> Option<String> {
    let utc = OffsetDateTime::parse(text, &Rfc3339)
        .ok()?
        .checked_to_offset(UtcOffset::UTC)?;
    (0..=9999)
        .contains(&utc.year())
        .then(|| format_timestamp(utc))
}

/// True for a real calendar day written `YYYY-MM-DD` (`2026-02-30` is not one).
pub fn is_date(text: &str) -> bool {
    text.len() == 10 && Date::parse(text, DATE).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference for `format_timestamp`.
    const TIMESTAMP: &[time::format_description::BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

    #[test]
    fn timestamps_have_fixed_width_and_milliseconds() {
        let now = now();
        assert_eq!(now.len(), 24, "{now}");
        assert!(now.ends_with('Z'));
        assert_eq!(&now[19..20], ".");
    }

    #[test]
    fn the_hand_written_format_matches_the_format_description() {
        let start = OffsetDateTime::from_unix_timestamp(0).unwrap();
        // From 1970 to about 2285, in steps that vary every field, milliseconds included.
        for step in 0..100_000i64 {
            let at =
                start + time::Duration::milliseconds(step * 98_765_432_123 % 10_000_000_000_000);
            let expected = at.format(TIMESTAMP).unwrap();
            assert_eq!(format_timestamp(at), expected);
        }
        let offset = UtcOffset::from_hms(5, 30, 0).unwrap();
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000)
            .unwrap()
            .to_offset(offset);
        assert_eq!(format_timestamp(at), "2027-01-15T08:00:00.000Z");
    }

    #[test]
    fn parse_normalises_offsets_to_utc() {
        assert_eq!(
            parse_timestamp("2026-11-27T21:00:00+01:00").unwrap(),
            "2026-11-27T20:00:00.000Z"
        );
        assert_eq!(
            parse_timestamp("2026-11-27T20:00:00.5Z").unwrap(),
            "2026-11-27T20:00:00.500Z"
        );
        assert!(parse_timestamp("2026-11-27").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn timestamps_past_the_ends_of_the_calendar_are_refused_not_a_panic() {
        assert!(parse_timestamp("9999-12-31T23:00:00-05:00").is_none());
        assert!(parse_timestamp("0000-01-01T00:00:00+01:00").is_none());
        assert_eq!(
            parse_timestamp("9999-12-31T18:59:59.999-05:00").unwrap(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            parse_timestamp("0000-01-01T00:59:00+00:59").unwrap(),
            "0000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn dates_must_be_real_days() {
        assert!(is_date("2026-02-28"));
        assert!(is_date("2028-02-29"));
        assert!(!is_date("2026-02-29"));
        assert!(!is_date("2026-02-30"));
        assert!(!is_date("2026-13-01"));
        assert!(!is_date("2026-1-01"));
        assert!(!is_date("26-01-01"));
        assert!(!is_date("2026-01-01T00:00:00Z"));
    }
}
