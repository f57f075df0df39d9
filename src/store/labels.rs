//! Labels: per space, names unique case-insensitively within the space.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::Tx;
use super::{Result, new_id};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub color: Option<String>,
}

/// A label as embedded in a task: `{id, name, color}`.
#[derive(Debug, Clone, Serialize)]
pub struct LabelRef {
    pub id: String,
    pub name: String,
    pub color: Option<String>,
}

/// The order a task shows its labels in: by name as SQLite's `NOCASE` compares (ASCII letters
/// folded, everything else by byte), then by id.
pub fn sort_labels(labels: &mut [LabelRef]) {
    fn folded(name: &str) -> impl Iterator<Item = u8> + '_ {
        name.bytes().map(|b| b.to_ascii_lowercase())
    }
    labels.sort_by(|a, b| {
        folded(&a.name)
            .cmp(folded(&b.name))
            .then_with(|| a.id.cmp(&b.id))
    });
}

const COLUMNS: &str = "id, space_id, name, color";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Label> {
    Ok(Label {
        id: row.get(0)?,
        space_id: row.get(1)?,
        name: row.get(2)?,
        color: row.get(3)?,
    })
}

/// The label with this id in this space.
pub fn find_label_in_space(
    conn: &Connection,
    space_id: &str,
    label_id: &str,
) -> Result<Option<Label>> {
    let label = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM labels WHERE id = ?1 AND space_id = ?2"
        ))?
        .query_row(params![label_id, space_id], from_row)
        .optional()?;
    Ok(label)
}

/// The space's label with this name, compared case-insensitively.
pub fn find_label_by_name(conn: &Connection, space_id: &str, name: &str) -> Result<Option<Label>> {
    let label = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM labels WHERE space_id = ?1 AND name = ?2 COLLATE NOCASE"
        ))?
        .query_row(params![space_id, name], from_row)
        .optional()?;
    Ok(label)
}

/// The most labels a space can hold: labels are made implicitly (a task naming one), so without
/// a cap a script could grow a space's label list, and every task form showing it, without end.
pub const MAX_LABELS_PER_SPACE: i64 = 1000;

/// Finds the space's label by name, or creates it with `color`; a space already holding
/// `MAX_LABELS_PER_SPACE` refuses a new one (409, naming `field`, the request's field).
pub fn find_or_create_label(
    tx: &Tx<'_>,
    space_id: &str,
    name: &str,
    color: Option<&str>,
    field: &str,
) -> Result<Label> {
    if let Some(label) = find_label_by_name(tx, space_id, name)? {
        return Ok(label);
    }
    let count: i64 = tx
        .prepare_cached("SELECT count(*) FROM labels WHERE space_id = ?1")?
        .query_row([space_id], |row| row.get(0))?;
    if count >= MAX_LABELS_PER_SPACE {
        return Err(crate::error::Error::Conflict {
            field: Some(field.to_string()),
            message: format!(
                "this space already has {MAX_LABELS_PER_SPACE} labels, the most it can hold; \
                 use an existing label (by id or name) instead of a new one"
            ),
        });
    }
    let label = Label {
        id: new_id(),
        space_id: space_id.to_string(),
        name: name.to_string(),
        color: color.map(str::to_string),
    };
    tx.prepare_cached("INSERT INTO labels (id, space_id, name, color) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![label.id, label.space_id, label.name, label.color])?;
    Ok(label)
}

/// A page of the space's labels in creation order.
pub fn list_labels(
    conn: &Connection,
    space_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Label>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM labels WHERE space_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let labels = statement
        .query_map(
            params![space_id, after.unwrap_or(""), limit as i64],
            from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_like_sqlite_nocase() {
        let names = [
            "b", "B", "a", "A", "_x", "[", "Zeta", "zeta", "é", "É", "ab", "a b", "a", "", "Ä",
        ];
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE l (id TEXT, name TEXT)")
            .unwrap();
        let mut labels = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let id = format!("{:02}", names.len() - i);
            conn.execute("INSERT INTO l VALUES (?1, ?2)", params![id, name])
                .unwrap();
            labels.push(LabelRef {
                id,
                name: name.to_string(),
                color: None,
            });
        }
        let sqlite: Vec<String> = conn
            .prepare("SELECT id FROM l ORDER BY name COLLATE NOCASE, id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        sort_labels(&mut labels);
        let ours: Vec<String> = labels.into_iter().map(|l| l.id).collect();
        assert_eq!(ours, sqlite);
    }
}
