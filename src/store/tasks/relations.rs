//! A task's assignees and labels: replaced as sets, or added and removed one at a time.

use rusqlite::params;

use crate::store::{Result, Tx};

/// Replaces the task's assignees with `user_ids`.
pub fn set_assignees(tx: &Tx<'_>, task_id: &str, user_ids: &[String]) -> Result<()> {
    tx.prepare_cached("DELETE FROM task_assignees WHERE task_id = ?1")?
        .execute([task_id])?;
    for user_id in user_ids {
        add_assignee(tx, task_id, user_id)?;
    }
    Ok(())
}

/// Replaces the task's labels with `label_ids`.
pub fn set_labels(tx: &Tx<'_>, task_id: &str, label_ids: &[String]) -> Result<()> {
    tx.prepare_cached("DELETE FROM task_labels WHERE task_id = ?1")?
        .execute([task_id])?;
    for label_id in label_ids {
        add_label(tx, task_id, label_id)?;
    }
    Ok(())
}

/// Returns whether anything changed.
pub fn add_assignee(tx: &Tx<'_>, task_id: &str, user_id: &str) -> Result<bool> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO task_assignees (task_id, user_id) VALUES (?1, ?2)")?
        .execute(params![task_id, user_id])?;
    Ok(added > 0)
}

pub fn remove_assignee(tx: &Tx<'_>, task_id: &str, user_id: &str) -> Result<bool> {
    let removed = tx
        .prepare_cached("DELETE FROM task_assignees WHERE task_id = ?1 AND user_id = ?2")?
        .execute(params![task_id, user_id])?;
    Ok(removed > 0)
}

pub fn add_label(tx: &Tx<'_>, task_id: &str, label_id: &str) -> Result<bool> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO task_labels (task_id, label_id) VALUES (?1, ?2)")?
        .execute(params![task_id, label_id])?;
    Ok(added > 0)
}

pub fn remove_label(tx: &Tx<'_>, task_id: &str, label_id: &str) -> Result<bool> {
    let removed = tx
        .prepare_cached("DELETE FROM task_labels WHERE task_id = ?1 AND label_id = ?2")?
        .execute(params![task_id, label_id])?;
    Ok(removed > 0)
}
