"""Drives ktasks' POST /mcp with the official MCP Python SDK (`mcp` on PyPI).

usage: mcp_client.py BASE_URL WRITE_TOKEN READ_TOKEN PROJECT_ID
Exits non-zero, with the reason, when anything is not as the contract says.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

READ_TOOLS = {"list_spaces", "list_members", "list_projects", "list_labels", "search_tasks", "get_task"}
WRITE_TOOLS = {
    "create_task", "update_task", "complete_task", "delete_task",
    "add_assignee", "remove_assignee", "add_label", "remove_label",
}


def connect(base, token, mode):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode)


def check(condition, what):
    if not condition:
        raise SystemExit(f"mcp client: {what}")


def structured(result, what):
    check(not result.is_error, f"{what} failed: {result.content}")
    check(result.structured_content is not None, f"{what}: no structuredContent")
    text = result.content[0].text
    check(json.loads(text) == result.structured_content, f"{what}: the text is not the structured content")
    return result.structured_content


async def session(base, write_token, read_token, project, mode):
    async with connect(base, write_token, mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        check(set(tools) == READ_TOOLS | WRITE_TOOLS, f"tools: {sorted(tools)}")
        for name in READ_TOOLS:
            check(tools[name].annotations.read_only_hint is True, f"{name} is not readOnlyHint")
            check(tools[name].output_schema is not None, f"{name} has no outputSchema")
        check(tools["delete_task"].annotations.destructive_hint is True, "delete_task is not destructiveHint")
        check("title" in tools["create_task"].input_schema["properties"], "create_task takes no title")

        created = structured(
            await client.call_tool("create_task", {"projectId": project, "title": "Written by an assistant",
                                                   "priority": "high", "labels": ["mcp"]}),
            "create_task",
        )
        task = created["id"]
        check(created["priority"] == "high" and created["labels"][0]["name"] == "mcp", f"created: {created}")
        found = structured(
            await client.call_tool("search_tasks", {"projectId": project, "q": "assistant", "limit": 1}),
            "search_tasks",
        )
        check([t["id"] for t in found["items"]] == [task], f"search: {found}")
        check("nextCursor" in found, "search has no nextCursor")
        updated = structured(
            await client.call_tool("update_task", {"id": task, "title": "Renamed by an assistant"}),
            "update_task",
        )
        check(updated["title"] == "Renamed by an assistant", f"updated: {updated}")
        done = structured(await client.call_tool("complete_task", {"id": task}), "complete_task")
        check(done["completedAt"] is not None, f"completed: {done}")
        got = structured(await client.call_tool("get_task", {"id": task}), "get_task")
        check(got["completedAt"] == done["completedAt"], "get_task disagrees with complete_task")

        # A bad input is the tool's answer, with the API's code, not a protocol error.
        bad = await client.call_tool("create_task", {"projectId": project, "title": ""})
        check(bad.is_error, "an empty title was accepted")
        error = json.loads(bad.content[0].text)
        check(error["code"] == "validation_failed" and error["field"] == "title", f"bad input: {error}")
        missing = await client.call_tool("get_task", {"id": "00000000-0000-0000-0000-000000000000"})
        check(missing.is_error and json.loads(missing.content[0].text)["code"] == "not_found", "a missing task")

        deleted = structured(await client.call_tool("delete_task", {"id": task}), "delete_task")
        check(deleted == {"id": task, "deleted": True}, f"deleted: {deleted}")
        gone = await client.call_tool("get_task", {"id": task})
        check(gone.is_error, "the deleted task is still there")

    async with connect(base, read_token, mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        check(names == READ_TOOLS, f"a read token is offered {sorted(names)}")
        refused = await client.call_tool("create_task", {"projectId": project, "title": "no"})
        check(refused.is_error and json.loads(refused.content[0].text)["code"] == "insufficient_scope",
              f"a read token wrote: {refused.content}")
        spaces = structured(await client.call_tool("list_spaces", {}), "list_spaces")
        check(len(spaces["items"]) >= 1, "no spaces")
    print(f"mcp client: mode {mode}: every check passed")


async def main(base, write_token, read_token, project):
    # "auto" probes server/discover and speaks the stateless 2026-07-28 revision; "legacy" the
    # initialize handshake (2025-11-25 with this SDK).
    for mode in ("auto", "2026-07-28", "legacy"):
        await session(base, write_token, read_token, project, mode)
    print("mcp client: every check passed with the official SDK")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
