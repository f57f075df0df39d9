-- ktasks schema: the whole current schema (its version is `SCHEMA_VERSION` in src/store/open.rs).
-- Embedded in the binary and applied as is to a new database. An older database (PRAGMA
-- user_version) is brought here by running the sections added since its version, each starting at
-- its "-- Version N:" line (src/store/open.rs).
--
-- Ids are UUIDv7 strings (time-ordered, so primary-key indexes stay append-only). Timestamps are
-- RFC 3339 UTC strings of fixed width ("2026-11-27T20:00:00.000Z"), so text order is time order.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL COLLATE NOCASE UNIQUE,
    name          TEXT NOT NULL,
    plan          TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'team')),
    password_hash TEXT,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE spaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    description TEXT,
    color       TEXT,
    personal    INTEGER NOT NULL DEFAULT 0 CHECK (personal IN (0, 1)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE space_members (
    space_id   TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (space_id, user_id)
) STRICT, WITHOUT ROWID;
-- "the spaces of a user" and "my role in this space" both start from the user.
CREATE INDEX space_members_by_user ON space_members (user_id, space_id);

CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    space_id     TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    slug         TEXT NOT NULL,
    description  TEXT,
    default_view TEXT NOT NULL DEFAULT 'kanban'
                 CHECK (default_view IN ('kanban', 'list', 'calendar', 'gantt')),
    color        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (space_id, slug)
) STRICT;
CREATE INDEX projects_by_space ON projects (space_id, id);

CREATE TABLE statuses (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    category   TEXT NOT NULL CHECK (category IN ('todo', 'in_progress', 'done')),
    position   INTEGER NOT NULL,
    color      TEXT
) STRICT;
CREATE INDEX statuses_by_project ON statuses (project_id, position);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    status_id    TEXT NOT NULL REFERENCES statuses (id),
    title        TEXT NOT NULL,
    description  TEXT,
    priority     TEXT NOT NULL DEFAULT 'none'
                 CHECK (priority IN ('none', 'low', 'medium', 'high', 'urgent')),
    due_date     TEXT,
    start_date   TEXT,
    position     REAL NOT NULL,
    parent_id    TEXT REFERENCES tasks (id) ON DELETE CASCADE,
    completed_at TEXT,
    created_by   TEXT NOT NULL REFERENCES users (id),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
-- The list order of SPEC section 2 (position, then id) within a project: pages are index range scans.
CREATE INDEX tasks_by_project ON tasks (project_id, position, id);
CREATE INDEX tasks_by_parent ON tasks (parent_id);
CREATE INDEX tasks_by_status ON tasks (status_id);

CREATE TABLE task_assignees (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX task_assignees_by_user ON task_assignees (user_id, task_id);

CREATE TABLE labels (
    id       TEXT PRIMARY KEY,
    space_id TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    color    TEXT
) STRICT;
CREATE UNIQUE INDEX labels_by_space_name ON labels (space_id, name COLLATE NOCASE);
CREATE INDEX labels_by_space ON labels (space_id, id);

CREATE TABLE task_labels (
    task_id  TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    label_id TEXT NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, label_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX task_labels_by_label ON task_labels (label_id, task_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    -- BLAKE3 of the whole token; the plaintext is never stored.
    token_hash   BLOB NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('write', 'read')),
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    revoked_at   TEXT
) STRICT;
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, id);

-- Version 2: web sessions. Only the BLAKE3 hash of the cookie value is stored.
CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Version 3: the epoch of everything token authentication depends on. The server caches what a
-- token's lookup returned and trusts it only while this number is unchanged; the triggers bump it
-- on every change to a token (but its last-use time) or a user, whoever makes it (the server, the
-- CLI in another process, or anyone with sqlite3), so a revoked token is never served from cache.
CREATE TABLE auth_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 0),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO auth_epoch (id, value) VALUES (0, 0);
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF id, user_id, name, prefix, token_hash, scope, created_at, expires_at, revoked_at
    ON api_tokens
BEGIN
    UPDATE auth_epoch SET value = value + 1;
END;
CREATE TRIGGER api_tokens_deleted AFTER DELETE ON api_tokens
BEGIN
    UPDATE auth_epoch SET value = value + 1;
END;
CREATE TRIGGER users_changed AFTER UPDATE ON users
BEGIN
    UPDATE auth_epoch SET value = value + 1;
END;
CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN
    UPDATE auth_epoch SET value = value + 1;
END;

-- Version 4: webhooks (SPEC section 9, docs/webhooks.md).
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    space_id        TEXT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    -- Event types joined by commas ("*" for all); none contains a comma.
    events          TEXT NOT NULL,
    description     TEXT,
    active          INTEGER NOT NULL CHECK (active IN (0, 1)),
    disabled_reason TEXT,
    -- It must be kept to sign; it is never returned after the response that created it.
    secret          TEXT NOT NULL,
    -- After a rotation, deliveries are signed with the old secret too until it expires.
    old_secret      TEXT,
    old_secret_until TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX webhooks_by_space ON webhooks (space_id, id);

-- An event's payload, once fanned out (since version 5; see webhook_outbox below): `id` is the
-- event's id, the `webhook-id` header of every attempt to every webhook, and `remaining` counts
-- the webhooks still to deliver to; the last one's row deletes the payload (the trigger below),
-- so only what is still to send is kept. `seq` is handed out by the server, in order and never
-- reused while it runs (AUTOINCREMENT would cost every insert a write). A rowid table: bodies are
-- appended, never rebalanced. (`webhooks`, the subscribers of a payload not fanned out yet, is
-- version 4's and gone in version 5.)
CREATE TABLE webhook_payloads (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    type       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    webhooks   TEXT,
    remaining  INTEGER NOT NULL DEFAULT 0,
    -- The request body, exactly as signed and sent on every attempt.
    body       TEXT NOT NULL
) STRICT;
-- An event waiting for delivery to one webhook, in the order of its key.
CREATE TABLE webhook_events (
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- Unix milliseconds: when the next attempt is due.
    next_attempt_at INTEGER NOT NULL,
    payload         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, next_attempt_at, payload)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER webhook_events_done AFTER DELETE ON webhook_events
BEGIN
    UPDATE webhook_payloads SET remaining = remaining - 1 WHERE seq = OLD.payload;
    DELETE FROM webhook_payloads WHERE seq = OLD.payload AND remaining <= 0 AND webhooks IS NULL;
END;

-- Every delivery attempt, for `GET /api/webhooks/:id/deliveries`, by webhook and then id (UUIDv7,
-- which begins with its creation time): a webhook's attempts newest first, and those older than
-- 30 days to prune, are ranges of the key.
CREATE TABLE webhook_attempts (
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    response_status INTEGER,
    error           TEXT,
    duration_ms     INTEGER,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT,
    PRIMARY KEY (webhook_id, id)
) STRICT, WITHOUT ROWID;

-- Version 5: the outbox. A commit whose changes made webhook events writes them here as one row,
-- in its own transaction: `events` holds, for each, its id, type, creation time, subscribed
-- webhooks and body (src/store/webhooks.rs, `PendingEvents`; LZ4-compressed since version 8), and
-- `count` how many there are. A
-- write thus pays an append in memory per event and its batch one insert, where version 4 had an
-- insert per event. The dispatcher fans the rows out in `seq` order (a payload row per event, an
-- event row per webhook still there) and deletes them.
CREATE TABLE webhook_outbox (
    seq    INTEGER PRIMARY KEY,
    count  INTEGER NOT NULL,
    events BLOB NOT NULL
) STRICT;
-- Payloads version 4 recorded but had not fanned out yet: fanned out now, due at once.
INSERT INTO webhook_events (webhook_id, next_attempt_at, payload)
    SELECT w.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), p.seq
    FROM webhook_payloads AS p
    JOIN json_each('["' || replace(p.webhooks, ',', '","') || '"]') AS j
    JOIN webhooks AS w ON w.id = j.value
    WHERE p.webhooks IS NOT NULL;
UPDATE webhook_payloads
    SET remaining = (SELECT count(*) FROM webhook_events WHERE payload = webhook_payloads.seq)
    WHERE webhooks IS NOT NULL;
DELETE FROM webhook_payloads WHERE remaining <= 0;
DROP TRIGGER webhook_events_done;
ALTER TABLE webhook_payloads DROP COLUMN webhooks;
CREATE TRIGGER webhook_events_done AFTER DELETE ON webhook_events
BEGIN
    UPDATE webhook_payloads SET remaining = remaining - 1 WHERE seq = OLD.payload;
    DELETE FROM webhook_payloads WHERE seq = OLD.payload AND remaining <= 0;
END;

-- Version 6: Idempotency-Key (SPEC 10). The first successful (2xx) answer to a request with a
-- key, per user (its status, headers as `name: value` lines, and body), written in the same
-- transaction as the request's change: a retry after a crash
-- between commit and answer still finds it. `request` is a hash of the method, path, query and
-- body (a reuse of the key for another request is refused); rows older than 24 hours are
-- ignored and pruned. Rows go in time order, so pruning walks the rowid (`created_at` comes before
-- the body, so reading it does not read a long body's overflow pages).
CREATE TABLE idempotency_keys (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    request    BLOB NOT NULL,
    status     INTEGER NOT NULL,
    headers    TEXT NOT NULL,
    body       BLOB NOT NULL,
    UNIQUE (user_id, key)
) STRICT;

-- Version 7: token lifecycle (SPEC 11). `spaces` is the JSON array of the space ids a restricted
-- token may reach (NULL: every space of its user; the reach is always intersected with the user's
-- membership). A rotation links the two tokens (`rotated_from` on the new one, `replaced_by` on
-- the old) and sets the old one's `revoked_at` to the end of its grace: a `revoked_at` in the
-- future is a token that still works until then. `last_used_ip` is written with `last_used_at`.
ALTER TABLE api_tokens ADD COLUMN spaces TEXT;
ALTER TABLE api_tokens ADD COLUMN rotated_from TEXT;
ALTER TABLE api_tokens ADD COLUMN replaced_by TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_ip TEXT;
DROP TRIGGER api_tokens_changed;
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF id, user_id, name, prefix, token_hash, scope, created_at, expires_at, revoked_at,
        spaces, rotated_from, replaced_by
    ON api_tokens
BEGIN
    UPDATE auth_epoch SET value = value + 1;
END;

-- Version 8: an outbox row's events of a page or more are LZ4-compressed (a block,
-- src/store/webhooks.rs), `size` being their length uncompressed. The bytes a commit writes were
-- what a write paid for its webhooks, and a commit's events repeat the same keys, ids and times
-- (the bench's shrink 10.7x). Rows with no `size` (shorter ones, and all from before) are plain.
ALTER TABLE webhook_outbox ADD COLUMN size INTEGER;
