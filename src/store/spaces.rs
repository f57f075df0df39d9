//! Spaces and their members. Every space starts with a "General" project (see `projects`).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::Tx;
use super::{Result, is_unique_violation, new_id, projects};
use crate::error::Error;

crate::text_enum!(Role { Owner = "owner", Admin = "admin", Member = "member", Viewer = "viewer" });

impl Role {
    /// Owner, admin and member may create and change projects and tasks; a viewer only reads.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::Viewer)
    }
}

/// Who is asking, and how far they reach: a user, through a token that may be restricted to some
/// of the user's spaces (SPEC 11). Every membership check made for a caller takes one, and its
/// SQL joins `space_members` on the user *and* the restriction, so the reach is always the
/// intersection of the two: leaving a space narrows a token, and no restriction widens it.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a str,
    /// The JSON array of the space ids the token may reach; `None` for all of the user's.
    pub spaces: Option<&'a str>,
}

impl<'a> Viewer<'a> {
    /// The user with no restriction: the settings pages (a session), the CLI, and checks that are
    /// about a user rather than a caller (is an assignee a member?).
    pub fn user(user_id: &'a str) -> Viewer<'a> {
        Viewer {
            user_id,
            spaces: None,
        }
    }
}

/// The SQL condition that `m.space_id` is within a `Viewer`'s restriction, the restriction's JSON
/// bound to `?N` (NULL: no restriction).
#[macro_export]
macro_rules! within_reach {
    ($n:literal) => {
        concat!(
            "(?",
            $n,
            " IS NULL OR m.space_id IN (SELECT value FROM json_each(?",
            $n,
            ")))"
        )
    };
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Space {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub color: Option<String>,
    pub personal: bool,
    /// The caller's role in this space.
    pub role: Role,
    pub created_at: String,
    pub updated_at: String,
}

pub struct NewSpace {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub color: Option<String>,
    pub personal: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
}

const COLUMNS: &str = "s.id, s.name, s.slug, s.description, s.color, s.personal, m.role, \
                       s.created_at, s.updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Space> {
    Ok(Space {
        id: row.get(0)?,
        name: row.get(1)?,
        slug: row.get(2)?,
        description: row.get(3)?,
        color: row.get(4)?,
        personal: row.get(5)?,
        role: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

fn slug_taken(slug: &str) -> Error {
    Error::Conflict {
        field: Some("slug".into()),
        message: format!("the slug {slug:?} is taken"),
    }
}

/// Creates a space with `owner_id` as its owner and its "General" project, in one transaction.
pub fn create_space(tx: &Tx<'_>, new: &NewSpace, owner_id: &str) -> Result<Space> {
    let now = crate::time::now();
    let space = Space {
        id: new_id(),
        name: new.name.clone(),
        slug: new.slug.clone(),
        description: new.description.clone(),
        color: new.color.clone(),
        personal: new.personal,
        role: Role::Owner,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    tx.prepare_cached(
        "INSERT INTO spaces (id, name, slug, description, color, personal, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        space.id,
        space.name,
        space.slug,
        space.description,
        space.color,
        space.personal,
        now
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken(&new.slug)
        } else {
            e.into()
        }
    })?;
    insert_member(tx, &space.id, owner_id, Role::Owner)?;
    projects::create_project(tx, &projects::NewProject::general(&space.id))?;
    Ok(space)
}

fn insert_member(tx: &Tx<'_>, space_id: &str, user_id: &str, role: Role) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO space_members (space_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (space_id, user_id) DO UPDATE SET role = excluded.role",
    )?
    .execute(params![space_id, user_id, role, crate::time::now()])?;
    Ok(())
}

/// A free slug for a personal space, derived from the email's local part (`ann@x` -> `ann`).
pub fn free_personal_slug(conn: &Connection, email: &str) -> Result<String> {
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    let mut base: String = local
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    base.truncate(40);
    if base.len() < 3 {
        base = format!("personal-{base}").trim_end_matches('-').to_string();
    }
    let mut candidate = base.clone();
    let mut suffix = 2;
    while slug_exists(conn, &candidate)? {
        candidate = format!("{base}-{suffix}");
        suffix += 1;
    }
    Ok(candidate)
}

fn slug_exists(conn: &Connection, slug: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM spaces WHERE slug = ?1")?
        .query_row([slug], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The viewer's spaces in id (creation) order, after `after` (a space id), at most `limit`.
pub fn list_spaces_for_user(
    conn: &Connection,
    viewer: Viewer<'_>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Space>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM space_members m JOIN spaces s ON s.id = m.space_id \
         WHERE m.user_id = ?1 AND m.space_id > ?2 AND {} ORDER BY m.space_id LIMIT ?3",
        crate::within_reach!(4)
    ))?;
    let spaces = statement
        .query_map(
            params![
                viewer.user_id,
                after.unwrap_or(""),
                limit as i64,
                viewer.spaces
            ],
            from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(spaces)
}

/// The space with the caller's role, or `None` when it does not exist or is out of the viewer's
/// reach.
pub fn find_space_for_user(
    conn: &Connection,
    space_id: &str,
    viewer: Viewer<'_>,
) -> Result<Option<Space>> {
    let space = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM space_members m JOIN spaces s ON s.id = m.space_id \
             WHERE m.space_id = ?1 AND m.user_id = ?2 AND {}",
            crate::within_reach!(3)
        ))?
        .query_row(params![space_id, viewer.user_id, viewer.spaces], from_row)
        .optional()?;
    Ok(space)
}

/// The viewer's role in a space, or `None` when not a member or out of reach.
pub fn role_in_space(
    conn: &Connection,
    space_id: &str,
    viewer: Viewer<'_>,
) -> Result<Option<Role>> {
    let role = conn
        .prepare_cached(concat!(
            "SELECT role FROM space_members m WHERE m.space_id = ?1 AND m.user_id = ?2 AND ",
            crate::within_reach!(3)
        ))?
        .query_row(params![space_id, viewer.user_id, viewer.spaces], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(role)
}

/// `(space id, personal)` for a slug.
pub fn find_space_by_slug(conn: &Connection, slug: &str) -> Result<Option<(String, bool)>> {
    let found = conn
        .prepare_cached("SELECT id, personal FROM spaces WHERE slug = ?1")?
        .query_row([slug], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(found)
}

/// Adds the user to the space, or changes the role of an existing member. The owner's role is
/// not changed this way, and a personal space takes no members.
pub fn add_member(tx: &Tx<'_>, space_slug: &str, user_id: &str, role: Role) -> Result<()> {
    let Some((space_id, personal)) = find_space_by_slug(tx, space_slug)? else {
        return Err(Error::validation(
            "space",
            format!("no space has the slug {space_slug:?}"),
        ));
    };
    if personal {
        return Err(Error::validation(
            "space",
            "a personal space has only its owner",
        ));
    }
    if role == Role::Owner {
        return Err(Error::validation(
            "role",
            "a space has one owner; use admin, member or viewer",
        ));
    }
    if role_in_space(tx, &space_id, Viewer::user(user_id))? == Some(Role::Owner) {
        return Err(Error::validation(
            "email",
            "this user owns the space; the owner's role stays",
        ));
    }
    insert_member(tx, &space_id, user_id, role)
}

/// The members of a space, by name.
pub fn list_members(conn: &Connection, space_id: &str) -> Result<Vec<Member>> {
    let mut statement = conn.prepare_cached(
        "SELECT u.id, u.name, u.email, m.role FROM space_members m JOIN users u ON u.id = m.user_id \
         WHERE m.space_id = ?1 ORDER BY u.name, u.id",
    )?;
    let members = statement
        .query_map([space_id], |row| {
            Ok(Member {
                user_id: row.get(0)?,
                name: row.get(1)?,
                email: row.get(2)?,
                role: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(members)
}

#[cfg(test)]
mod tests {
    use crate::store::{open_temp, users};

    #[test]
    fn personal_slugs_are_derived_and_deduplicated() {
        let (_dir, store) = open_temp();
        for email in [
            "ann@a.example",
            "ann@b.example",
            "x@c.example",
            "Jo.Doe+tag@d.example",
        ] {
            store
                .write(|tx| users::create_user(tx, email, "n", users::Plan::Pro))
                .unwrap();
        }
        let slugs: Vec<String> = store
            .read(|conn| {
                let mut s = conn.prepare("SELECT slug FROM spaces ORDER BY id")?;
                Ok(s.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(slugs, ["ann", "ann-2", "personal-x", "jo-doe-tag"]);
    }
}
