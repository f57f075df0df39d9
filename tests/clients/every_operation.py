"""Every operation of the ktasks API through the Python client that openapi-python-client
generates from the served document, on its default settings, against a live server.

Run by `.ci/clients` (which generates the client, type-checks this file with mypy and runs it):
    KTASKS_URL=http://127.0.0.1:8080 KTASKS_TOKEN=kt_... python every_operation.py
The server's rate limit must be low enough for the last step to reach it (`.ci/clients` sets 300
a minute). Any failure is an AssertionError or an exception: exit code non-zero.
"""

import datetime
import os
import uuid
from http import HTTPStatus
from typing import TypeVar

from ktasks_api_client import AuthenticatedClient, Client
from ktasks_api_client.api.account import get_me
from ktasks_api_client.api.assignees_and_labels import (
    add_task_assignee,
    add_task_label,
    list_labels,
    remove_task_assignee,
    remove_task_label,
)
from ktasks_api_client.api.projects import create_project, get_project, list_projects, update_project
from ktasks_api_client.api.service import get_developers, get_health, get_open_api
from ktasks_api_client.api.spaces import create_space, get_space, list_space_members, list_spaces
from ktasks_api_client.api.tasks import create_task, delete_task, get_task, list_tasks, update_task
from ktasks_api_client.api.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhook_deliveries,
    list_webhooks,
    rotate_webhook_secret,
    test_webhook,
    update_webhook,
)
from ktasks_api_client.models import (
    AssigneeBody,
    Error,
    ErrorCode,
    LabelBody,
    LabelDeleteBody,
    ListTasksAssigneeIdType1,
    Me,
    NewProject,
    NewSpace,
    NewTask,
    Project,
    Priority,
    ProjectPatch,
    Space,
    Task,
    TaskPatch,
    View,
    NewWebhook,
    Webhook,
    WebhookEventType,
    WebhookPatch,
    WebhookSecret,
    WebhookTestEvent,
    WebhookWithSecret,
)
from ktasks_api_client.types import UNSET, Response, Unset

T = TypeVar("T")

URL = os.environ["KTASKS_URL"]
client = AuthenticatedClient(base_url=URL, token=os.environ["KTASKS_TOKEN"])
public = Client(base_url=URL)


def ok(response: Response[Error | T], kind: type[T], status: HTTPStatus = HTTPStatus.OK) -> T:
    """The parsed body of a successful response, typed; anything else fails with the error."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


def error(response: Response[Error | T], status: HTTPStatus, code: ErrorCode) -> Error:
    """The typed Error of a refused request."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, Error), response.parsed
    assert response.parsed.code == code, response.parsed
    return response.parsed


# Service: no token.
assert get_health.sync_detailed(client=public).status_code == HTTPStatus.OK
assert get_open_api.sync_detailed(client=public).status_code == HTTPStatus.OK
assert get_developers.sync_detailed(client=public).status_code == HTTPStatus.OK

# Account and spaces.
me = ok(get_me.sync_detailed(client=client), Me)
my_id: uuid.UUID = me.user.id
personal = ok(list_spaces.sync_detailed(client=client), list)
assert any(isinstance(s, Space) and s.personal for s in personal)
slug = "generated-" + uuid.uuid4().hex[:8]
space = ok(
    create_space.sync_detailed(client=client, body=NewSpace(name="Generated", slug=slug)),
    Space,
    HTTPStatus.CREATED,
)
assert ok(get_space.sync_detailed(space.id, client=client), Space).slug == slug
members = ok(list_space_members.sync_detailed(space.id, client=client), list)
assert [m.user_id for m in members] == [my_id]
taken = create_space.sync_detailed(client=client, body=NewSpace(name="Again", slug=slug))
error(taken, HTTPStatus.CONFLICT, ErrorCode.CONFLICT)

# Projects: one created with a slug (and no defaultView: the server's default applies).
project = ok(
    create_project.sync_detailed(
        client=client, body=NewProject(space_id=space.id, name="Website", slug="website")
    ),
    Project,
    HTTPStatus.CREATED,
)
assert project.default_view == View.KANBAN
projects = ok(list_projects.sync_detailed(client=client, space_id=space.id), list)
assert project.id in [p.id for p in projects]
assert ok(get_project.sync_detailed(project.id, client=client), Project).slug == "website"
renamed = ok(
    update_project.sync_detailed(
        project.id, client=client, body=ProjectPatch(default_view=View.LIST)
    ),
    Project,
)
assert renamed.default_view == View.LIST and renamed.name == "Website"

# Tasks: a partial PATCH leaves every other field alone, the nullable ones included.
parent = ok(
    create_task.sync_detailed(client=client, body=NewTask(project_id=project.id, title="Epic")),
    Task,
    HTTPStatus.CREATED,
)
task = ok(
    create_task.sync_detailed(
        client=client,
        body=NewTask(
            project_id=project.id,
            title="Launch",
            description="Ship it",
            priority=Priority.HIGH,
            start_date=datetime.date(2027, 1, 10),
            due_date=datetime.date(2027, 1, 15),
            parent_id=parent.id,
            labels=["release"],
        ),
    ),
    Task,
    HTTPStatus.CREATED,
)
retitled = ok(update_task.sync_detailed(task.id, client=client, body=TaskPatch(title="Launch v2")), Task)
assert retitled.title == "Launch v2"
assert retitled.priority == Priority.HIGH, "a PATCH without priority keeps it"
assert retitled.description == "Ship it" and retitled.parent_id == parent.id
assert retitled.start_date == datetime.date(2027, 1, 10) and retitled.due_date == datetime.date(2027, 1, 15)
assert [label.name for label in retitled.labels] == ["release"]
urgent = ok(
    update_task.sync_detailed(task.id, client=client, body=TaskPatch(priority=Priority.URGENT, due_date=None)),
    Task,
)
assert urgent.title == "Launch v2" and urgent.priority == Priority.URGENT
assert urgent.due_date is None and urgent.description == "Ship it", "null clears only what it names"
assert ok(get_task.sync_detailed(task.id, client=client), Task).updated_at == urgent.updated_at

# Assignees and labels: removed by query and by body.
assigned = ok(add_task_assignee.sync_detailed(task.id, client=client, body=AssigneeBody(user_id=my_id)), Task)
assert assigned.assignees == [my_id]
mine = ok(list_tasks.sync_detailed(client=client, assignee_id=ListTasksAssigneeIdType1.ME), list)
assert task.id in [t.id for t in mine]
unassigned = ok(remove_task_assignee.sync_detailed(task.id, client=client, user_id=my_id), Task)
assert unassigned.assignees == []
ok(add_task_assignee.sync_detailed(task.id, client=client, body=AssigneeBody(user_id=my_id)), Task)
by_body = ok(remove_task_assignee.sync_detailed(task.id, client=client, body=AssigneeBody(user_id=my_id)), Task)
assert by_body.assignees == []
labelled = ok(add_task_label.sync_detailed(task.id, client=client, body=LabelBody(name="Urgent", color="#ef4444")), Task)
urgent_label = next(label for label in labelled.labels if label.name == "Urgent")
labels = ok(list_labels.sync_detailed(client=client, space_id=space.id), list)
assert sorted(label.name for label in labels) == ["Urgent", "release"]
after_query = ok(remove_task_label.sync_detailed(task.id, client=client, name="urgent"), Task)
assert [label.name for label in after_query.labels] == ["release"]
ok(add_task_label.sync_detailed(task.id, client=client, body=LabelBody(label_id=urgent_label.id)), Task)
after_body = ok(
    remove_task_label.sync_detailed(task.id, client=client, body=LabelDeleteBody(label_id=urgent_label.id)),
    Task,
)
assert [label.name for label in after_body.labels] == ["release"]

# Paging through a list with the Next-Cursor header.
made = {ok(create_task.sync_detailed(client=client, body=NewTask(project_id=project.id, title=f"t{i}")), Task, HTTPStatus.CREATED).id for i in range(5)}
seen: list[uuid.UUID] = []
cursor: str | Unset = UNSET  # the README's paging loop, as written there
pages = 0
while True:
    page = list_tasks.sync_detailed(client=client, project_id=project.id, limit=2, completed=False, cursor=cursor)
    items = ok(page, list)
    seen.extend(t.id for t in items)
    pages += 1
    cursor = page.headers.get("Next-Cursor", UNSET)
    if isinstance(cursor, Unset):
        assert "Link" not in page.headers
        break
assert pages == 4 and len(seen) == 7 and set(seen) == made | {task.id, parent.id}, (pages, seen)

# Webhooks: the secret comes with the webhook once, and from a rotation; a test is queued.
# (.ci/clients allows plain-http private targets: the URL is a closed local port.)
hook = ok(
    create_webhook.sync_detailed(
        client=client,
        body=NewWebhook(
            space_id=space.id, url="http://127.0.0.1:9/hook", events=[WebhookEventType.TASK_CREATED]
        ),
    ),
    WebhookWithSecret,
    HTTPStatus.CREATED,
)
assert hook.secret.startswith("whsec_") and hook.active
hooks = ok(list_webhooks.sync_detailed(client=client, space_id=space.id), list)
assert [h.id for h in hooks] == [hook.id]
assert ok(get_webhook.sync_detailed(hook.id, client=client), Webhook).url == "http://127.0.0.1:9/hook"
off = ok(update_webhook.sync_detailed(hook.id, client=client, body=WebhookPatch(active=False, description=None)), Webhook)
assert not off.active and off.description is None
on = ok(update_webhook.sync_detailed(hook.id, client=client, body=WebhookPatch(active=True)), Webhook)
assert on.active and on.disabled_reason is None
rotated = ok(rotate_webhook_secret.sync_detailed(hook.id, client=client), WebhookSecret)
assert rotated.secret != hook.secret
queued = ok(test_webhook.sync_detailed(hook.id, client=client), WebhookTestEvent, HTTPStatus.ACCEPTED)
attempts = ok(list_webhook_deliveries.sync_detailed(hook.id, client=client), list)
assert all(a.event_id == queued.event_id for a in attempts)
unknown = create_webhook.sync_detailed(
    client=client, body=NewWebhook(space_id=space.id, url="/relative", events=[WebhookEventType.TASK_CREATED])
)
assert error(unknown, HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED).field == "url"
assert delete_webhook.sync_detailed(hook.id, client=client).status_code == HTTPStatus.NO_CONTENT

# Safe retries (README "Retrying safely"): one key sent twice makes one task; a stale If-Match is
# 412 and changes nothing; If-None-Match with the current ETag is 304.
key = str(uuid.uuid4())
once = NewTask(project_id=project.id, title="Exactly once")
first = create_task.sync_detailed(client=client, body=once, idempotency_key=key)
again = create_task.sync_detailed(client=client, body=once, idempotency_key=key)
kept = ok(first, Task, HTTPStatus.CREATED)
assert ok(again, Task, HTTPStatus.CREATED).id == kept.id
assert again.headers["Idempotent-Replayed"] == "true"
reused = create_task.sync_detailed(client=client, body=NewTask(project_id=project.id, title="Other"), idempotency_key=key)
error(reused, HTTPStatus.UNPROCESSABLE_ENTITY, ErrorCode.IDEMPOTENCY_KEY_REUSED)
read_tag = first.headers["ETag"]
edited = update_task.sync_detailed(kept.id, client=client, body=TaskPatch(title="Edited"), if_match=read_tag)
assert ok(edited, Task).title == "Edited"
late = update_task.sync_detailed(kept.id, client=client, body=TaskPatch(title="Lost"), if_match=read_tag)
error(late, HTTPStatus.PRECONDITION_FAILED, ErrorCode.PRECONDITION_FAILED)
unchanged = get_task.sync_detailed(kept.id, client=client, if_none_match=edited.headers["ETag"])
assert unchanged.status_code == HTTPStatus.NOT_MODIFIED
assert delete_task.sync_detailed(kept.id, client=client, if_match=edited.headers["ETag"]).status_code == HTTPStatus.NO_CONTENT

# Typed errors.
empty_title = create_task.sync_detailed(client=client, body=NewTask(project_id=project.id, title=" "))
assert error(empty_title, HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED).field == "title"
error(get_task.sync_detailed(uuid.uuid4(), client=client), HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND)
stranger = AuthenticatedClient(base_url=URL, token="kt_" + "0" * 40)
error(get_me.sync_detailed(client=stranger), HTTPStatus.UNAUTHORIZED, ErrorCode.UNAUTHORIZED)
assert delete_task.sync_detailed(task.id, client=client).status_code == HTTPStatus.NO_CONTENT
error(get_task.sync_detailed(task.id, client=client), HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND)
for _ in range(1000):
    response = get_me.sync_detailed(client=client)
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        error(response, HTTPStatus.TOO_MANY_REQUESTS, ErrorCode.RATE_LIMITED)
        assert int(response.headers["Retry-After"]) >= 1
        break
    ok(response, Me)
else:
    raise AssertionError("the rate limit was never reached")
print("every operation worked through the generated client")
