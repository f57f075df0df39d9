//! Field rules shared by the API handlers and the CLI: slugs, colours, names, titles.
//! Each returns the cleaned value or a `validation_failed` error naming the field.

use crate::error::Error;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_DESCRIPTION_CHARS: usize = 100_000;
/// The most `assignees` and `labels` one request may name: far beyond any real task, and small
/// enough that checking each one inside the write transaction never holds the writer for long.
pub const MAX_ASSIGNEES: usize = 50;
pub const MAX_LABELS: usize = 50;

/// 3-50 characters of `a-z`, `0-9` and `-`.
pub fn slug(field: &str, value: String) -> Result<String, Error> {
    let ok = (3..=50).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(value)
    } else {
        Err(Error::validation(
            field,
            format!("`{field}` must be 3-50 characters of a-z, 0-9 and -"),
        ))
    }
}

/// `#rgb` or `#rrggbb`, stored lower-case.
pub fn color(field: &str, value: String) -> Result<String, Error> {
    let hex = value.strip_prefix('#').unwrap_or("");
    if (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Error::validation(
            field,
            format!("`{field}` must be a hex colour like #3b82f6 or #38f"),
        ))
    }
}

/// Trimmed, 1 to `max` characters.
pub fn text(field: &str, value: String, max: usize) -> Result<String, Error> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Error::validation(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    if chars > max {
        return Err(Error::validation(
            field,
            format!("`{field}` must be at most {max} characters"),
        ));
    }
    Ok(if trimmed.len() == value.len() {
        value
    } else {
        trimmed.to_string()
    })
}

/// A name (of a token, space, project, label or user): `text`, without control characters. Names
/// are printed on the operator's terminal by `ktasks token list` and friends, where an escape
/// sequence would be obeyed, not shown; a name has no use for a newline or a tab either.
pub fn name(field: &str, value: String, max: usize) -> Result<String, Error> {
    if let Some(control) = value.chars().find(|c| is_unprintable(*c)) {
        return Err(Error::validation(
            field,
            format!(
                "`{field}` must not contain control characters (found U+{:04X})",
                u32::from(control)
            ),
        ));
    }
    text(field, value, max)
}

/// A control character, a line or paragraph separator, or a bidirectional mark, override or
/// isolate (invisible, they reorder what a terminal shows). Zero-width joiners stay allowed: emoji
/// sequences are made of them.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Up to 100,000 characters, kept as given (whitespace in a description may be meaningful).
pub fn description(field: &str, value: String) -> Result<String, Error> {
    if value.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::validation(
            field,
            format!("`{field}` must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(value)
}

/// An id as the API writes them: a UUID in its hyphenated form (any case accepted), returned in
/// lower case, the form stored. `Uuid::try_parse` alone also takes the braced, URN and
/// hyphen-less forms, which the document's `format: uuid` does not.
pub fn uuid(text: &str) -> Option<String> {
    let parsed = uuid::Uuid::try_parse(text).ok()?;
    (text.len() == 36).then(|| parsed.hyphenated().to_string())
}

/// A real calendar date, `YYYY-MM-DD`.
pub fn date(field: &str, value: String) -> Result<String, Error> {
    if crate::time::is_date(&value) {
        Ok(value)
    } else {
        Err(Error::validation(
            field,
            format!("`{field}` must be a real calendar date, YYYY-MM-DD"),
        ))
    }
}

/// A value of a closed set (`text_enum!`), or an error listing the set.
pub fn one_of<T>(
    field: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<T, Error> {
    parse(value).ok_or_else(|| {
        Error::validation(
            field,
            format!("`{field}` must be one of: {}", all.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["abc", "a-b-c", "team-2026", &"a".repeat(50)] {
            assert!(slug("slug", good.to_string()).is_ok(), "{good}");
        }
        for bad in ["ab", "ABC", "a_b", "a b", "été", &"a".repeat(51), ""] {
            assert_eq!(
                slug("slug", bad.to_string()).unwrap_err().field(),
                Some("slug"),
                "{bad}"
            );
        }
    }

    #[test]
    fn colors() {
        assert_eq!(color("color", "#ABC".into()).unwrap(), "#abc");
        assert_eq!(color("color", "#3b82f6".into()).unwrap(), "#3b82f6");
        for bad in ["3b82f6", "#3b82f", "#ggg", "#", "red", "#3b82f6ff"] {
            assert!(color("color", bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuids_are_the_hyphenated_form_in_lower_case() {
        let id = "01a21edd-ac5f-72f8-b787-6977a0249d57";
        assert_eq!(uuid(id).as_deref(), Some(id));
        assert_eq!(uuid(&id.to_uppercase()).as_deref(), Some(id));
        for bad in [
            "01a21eddac5f72f8b7876977a0249d57",
            "{01a21edd-ac5f-72f8-b787-6977a0249d57}",
            "urn:uuid:01a21edd-ac5f-72f8-b787-6977a0249d57",
            "01a21edd-ac5f-72f8-b787-6977a0249d5",
            "",
        ] {
            assert_eq!(uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_refuse_control_characters() {
        assert_eq!(name("name", " Zapier ".into(), 200).unwrap(), "Zapier");
        assert!(name("name", "VS Code · plugin ✓".into(), 200).is_ok());
        assert!(name("name", "family 👨\u{200D}👩\u{200D}👧".into(), 200).is_ok());
        for bad in [
            "red\u{1b}[31mtext",
            "a\nb",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{9b}31m",
            "bidi\u{202E}gnp.exe",
            "mark\u{200F}",
            "line\u{2028}separator",
        ] {
            let error = name("name", bad.into(), 200).unwrap_err();
            assert_eq!(error.field(), Some("name"), "{bad:?}");
            assert!(error.to_string().contains("control"), "{bad:?}");
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(text("title", "  hi  ".into(), 500).unwrap(), "hi");
        assert!(text("title", "   ".into(), 500).is_err());
        assert!(text("title", "é".repeat(500), 500).is_ok());
        assert!(text("title", "é".repeat(501), 500).is_err());
    }
}
