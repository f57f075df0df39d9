//! Projects and their statuses. Every new project gets the default statuses of SPEC section 1.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::Tx;
use super::spaces::{Role, Viewer};
use super::{Result, is_unique_violation, new_id};
use crate::error::Error;

crate::text_enum!(View { Kanban = "kanban", List = "list", Calendar = "calendar", Gantt = "gantt" });
crate::text_enum!(Category { Todo = "todo", InProgress = "in_progress", Done = "done" });

const DEFAULT_STATUSES: [(&str, Category, &str); 3] = [
    ("To Do", Category::Todo, "#94a3b8"),
    ("In Progress", Category::InProgress, "#3b82f6"),
    ("Done", Category::Done, "#22c55e"),
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub default_view: View,
    pub color: Option<String>,
    pub statuses: Vec<Status>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub id: String,
    pub name: String,
    pub category: Category,
    pub position: i64,
    pub color: Option<String>,
}

pub struct NewProject {
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub default_view: View,
    pub color: Option<String>,
}

impl NewProject {
    pub fn general(space_id: &str) -> NewProject {
        NewProject {
            space_id: space_id.to_string(),
            name: "General".into(),
            slug: "general".into(),
            description: None,
            default_view: View::Kanban,
            color: None,
        }
    }
}

/// Changes of a PATCH: `None` = unchanged; for nullable fields `Some(None)` = cleared.
#[derive(Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<Option<String>>,
    pub default_view: Option<View>,
    pub color: Option<Option<String>>,
}

const COLUMNS: &str = "p.id, p.space_id, p.name, p.slug, p.description, p.default_view, p.color, p.created_at, p.updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: row.get(0)?,
        space_id: row.get(1)?,
        name: row.get(2)?,
        slug: row.get(3)?,
        description: row.get(4)?,
        default_view: row.get(5)?,
        color: row.get(6)?,
        statuses: Vec::new(),
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

fn slug_taken(slug: &str) -> Error {
    Error::Conflict {
        field: Some("slug".into()),
        message: format!("the slug {slug:?} is taken in this space"),
    }
}

/// Creates the project with the default statuses, in the caller's transaction.
pub fn create_project(tx: &Tx<'_>, new: &NewProject) -> Result<Project> {
    let now = crate::time::now();
    tx.prepare_cached(
        "INSERT INTO projects (id, space_id, name, slug, description, default_view, color, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        new_id(),
        new.space_id,
        new.name,
        new.slug,
        new.description,
        new.default_view,
        new.color,
        now
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken(&new.slug)
        } else {
            e.into()
        }
    })?;
    let id: String = tx.query_row(
        "SELECT id FROM projects WHERE space_id = ?1 AND slug = ?2",
        params![new.space_id, new.slug],
        |row| row.get(0),
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO statuses (id, project_id, name, category, position, color) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (position, (name, category, color)) in DEFAULT_STATUSES.iter().enumerate() {
        insert.execute(params![
            new_id(),
            id,
            name,
            category,
            position as i64,
            color
        ])?;
    }
    Ok(find_project(tx, &id)?.expect("the project was just inserted"))
}

/// A project with its statuses, regardless of who asks (callers check membership).
pub fn find_project(conn: &Connection, project_id: &str) -> Result<Option<Project>> {
    let project = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM projects p WHERE p.id = ?1"))?
        .query_row([project_id], from_row)
        .optional()?;
    let Some(mut project) = project else {
        return Ok(None);
    };
    project.statuses = statuses_of(conn, &project.id)?;
    Ok(Some(project))
}

/// The project and the user's role in its space; `None` when missing or not visible to the user.
pub fn find_project_for_user(
    conn: &Connection,
    project_id: &str,
    viewer: Viewer<'_>,
) -> Result<Option<(Project, Role)>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, m.role FROM projects p \
             JOIN space_members m ON m.space_id = p.space_id AND m.user_id = ?2 AND {} \
             WHERE p.id = ?1",
            crate::within_reach!(3)
        ))?
        .query_row(params![project_id, viewer.user_id, viewer.spaces], |row| {
            Ok((from_row(row)?, row.get(9)?))
        })
        .optional()?;
    let Some((mut project, role)) = found else {
        return Ok(None);
    };
    project.statuses = statuses_of(conn, &project.id)?;
    Ok(Some((project, role)))
}

/// The project's space and the user's role in it, without loading the project (for checks).
pub fn project_access(
    conn: &Connection,
    project_id: &str,
    viewer: Viewer<'_>,
) -> Result<Option<(String, Role)>> {
    let found = conn
        .prepare_cached(concat!(
            "SELECT p.space_id, m.role FROM projects p \
             JOIN space_members m ON m.space_id = p.space_id AND m.user_id = ?2 AND ",
            crate::within_reach!(3),
            " WHERE p.id = ?1"
        ))?
        .query_row(params![project_id, viewer.user_id, viewer.spaces], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(found)
}

pub fn statuses_of(conn: &Connection, project_id: &str) -> Result<Vec<Status>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, name, category, position, color FROM statuses WHERE project_id = ?1 \
         ORDER BY position, id",
    )?;
    let statuses = statement
        .query_map([project_id], |row| {
            Ok(Status {
                id: row.get(0)?,
                name: row.get(1)?,
                category: row.get(2)?,
                position: row.get(3)?,
                color: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(statuses)
}

/// A page of a space's projects in id order, with their statuses, in two queries.
pub fn list_projects(
    conn: &Connection,
    space_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Project>> {
    let after = after.unwrap_or("");
    let mut projects: Vec<Project> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM projects p WHERE p.space_id = ?1 AND p.id > ?2 ORDER BY p.id LIMIT ?3"
        ))?
        .query_map(params![space_id, after, limit as i64], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let Some(last) = projects.last().map(|p| p.id.clone()) else {
        return Ok(projects);
    };
    let mut statement = conn.prepare_cached(
        "SELECT s.project_id, s.id, s.name, s.category, s.position, s.color FROM statuses s \
         JOIN projects p ON p.id = s.project_id \
         WHERE p.space_id = ?1 AND p.id > ?2 AND p.id <= ?3 ORDER BY s.project_id, s.position, s.id",
    )?;
    let mut rows = statement.query(params![space_id, after, last])?;
    let mut index = 0;
    while let Some(row) = rows.next()? {
        let project_id: String = row.get(0)?;
        while projects[index].id != project_id {
            index += 1;
        }
        projects[index].statuses.push(Status {
            id: row.get(1)?,
            name: row.get(2)?,
            category: row.get(3)?,
            position: row.get(4)?,
            color: row.get(5)?,
        });
    }
    Ok(projects)
}

/// Applies a PATCH; the caller has checked the role and validated every value.
pub fn update_project(tx: &Tx<'_>, project_id: &str, changes: &ProjectChanges) -> Result<Project> {
    let changed = tx
        .prepare_cached(
            "UPDATE projects SET \
               name = coalesce(?2, name), \
               slug = coalesce(?3, slug), \
               description = CASE WHEN ?4 THEN ?5 ELSE description END, \
               default_view = coalesce(?6, default_view), \
               color = CASE WHEN ?7 THEN ?8 ELSE color END, \
               updated_at = ?9 \
             WHERE id = ?1",
        )?
        .execute(params![
            project_id,
            changes.name,
            changes.slug,
            changes.description.is_some(),
            changes.description.clone().flatten(),
            changes.default_view,
            changes.color.is_some(),
            changes.color.clone().flatten(),
            crate::time::now(),
        ])
        .map_err(|e| match (&changes.slug, is_unique_violation(&e)) {
            (Some(slug), true) => slug_taken(slug),
            _ => e.into(),
        })?;
    if changed == 0 {
        return Err(Error::NotFound);
    }
    Ok(find_project(tx, project_id)?.expect("the project exists"))
}
