//! Users: created by the CLI only. Creating a user also creates the user's personal space.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::Tx;
use super::{Result, is_unique_violation, new_id, spaces};
use crate::error::Error;

crate::text_enum!(Plan { Free = "free", Pro = "pro", Team = "team" });

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub plan: Plan,
    pub created_at: String,
}

const COLUMNS: &str = "id, email, name, plan, created_at";

/// A user's columns in a query that joins `users u`: read back with `user_at`.
pub const USER_COLUMNS: &str = "u.id, u.email, u.name, u.plan, u.created_at";

/// The user whose `COLUMNS` (or `USER_COLUMNS`) start at column `start` of `row`: the one place
/// a `User` is built from a row.
pub fn user_at(row: &Row<'_>, start: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(start)?,
        email: row.get(start + 1)?,
        name: row.get(start + 2)?,
        plan: row.get(start + 3)?,
        created_at: row.get(start + 4)?,
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    user_at(row, 0)
}

/// Creates the user, their personal space and its "General" project, in the caller's transaction.
pub fn create_user(tx: &Tx<'_>, email: &str, name: &str, plan: Plan) -> Result<User> {
    let user = User {
        id: new_id(),
        email: email.to_string(),
        name: name.to_string(),
        plan,
        created_at: crate::time::now(),
    };
    tx.prepare_cached(
        "INSERT INTO users (id, email, name, plan, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        user.id,
        user.email,
        user.name,
        user.plan,
        user.created_at
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::Conflict {
                field: Some("email".into()),
                message: format!("a user with email {email} already exists"),
            }
        } else {
            e.into()
        }
    })?;
    let slug = spaces::free_personal_slug(tx, email)?;
    spaces::create_space(
        tx,
        &spaces::NewSpace {
            name: "Personal".into(),
            slug,
            description: None,
            color: None,
            personal: true,
        },
        &user.id,
    )?;
    Ok(user)
}

pub fn list_users(conn: &Connection) -> Result<Vec<User>> {
    let mut statement = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
    let users = statement
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(users)
}

/// Finds a user by email, case-insensitively.
pub fn find_user_by_email(conn: &Connection, email: &str) -> Result<Option<User>> {
    let user = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email = ?1"))?
        .query_row([email], from_row)
        .optional()?;
    Ok(user)
}

pub fn count_users(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?)
}

/// Sets the plan; `None` when no user has that email.
pub fn set_plan(tx: &Tx<'_>, email: &str, plan: Plan) -> Result<Option<User>> {
    let changed = tx
        .prepare_cached("UPDATE users SET plan = ?1 WHERE email = ?2")?
        .execute(params![plan, email])?;
    if changed == 0 {
        return Ok(None);
    }
    find_user_by_email(tx, email)
}

/// The user and their password hash (`None` when no password was ever set), by email.
pub fn find_login(conn: &Connection, email: &str) -> Result<Option<(User, Option<String>)>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, password_hash FROM users WHERE email = ?1"
        ))?
        .query_row([email], |row| Ok((from_row(row)?, row.get(5)?)))
        .optional()?;
    Ok(found)
}

/// Sets the password hash and ends every session of the user: a new password signs out
/// everywhere. `None` when no user has that email.
pub fn set_password_hash(tx: &Tx<'_>, email: &str, hash: &str) -> Result<Option<usize>> {
    let Some(user) = find_user_by_email(tx, email)? else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![user.id, hash])?;
    Ok(Some(super::sessions::delete_sessions_of_user(
        tx, &user.id,
    )?))
}

/// A plausible email: one `@`, something on both sides, no spaces. Deliverability is not our job.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_temp;

    #[test]
    fn email_is_unique_case_insensitively() {
        let (_dir, store) = open_temp();
        store
            .write(|tx| create_user(tx, "Ann@Example.com", "Ann", Plan::Pro))
            .unwrap();
        let error = store.write(|tx| create_user(tx, "ann@example.COM", "Ann 2", Plan::Pro));
        assert!(matches!(error, Err(Error::Conflict { .. })));
        let found = store
            .read(|c| find_user_by_email(c, "ANN@example.com"))
            .unwrap()
            .unwrap();
        assert_eq!(found.email, "Ann@Example.com");
    }

    #[test]
    fn email_shape() {
        assert!(is_valid_email("a@b"));
        assert!(is_valid_email("first.last+tag@example.co.uk"));
        for bad in ["", "a", "@b", "a@", "a@@b", "a b@c", "a@b@c"] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
