#!/usr/bin/env python3
"""A real MCP client for tests/mcp.rs: the official Python SDK (`mcp` on PyPI)
starts `git orch mcp` over stdio, as an agent's host would, and drives it.

    mcp_client.py SCENARIO REPO [ARGS…]

prints one JSON object on stdout: the tools listed and a transcript of every
call ({tool, arguments, is_error, structured, text} or {tool, arguments,
protocol_error}). The Rust test checks the transcript and, with git itself,
the repository. Exit 3 (and an `error:` line) when the package is missing.
"""

import asyncio
import json
import os
import sys

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.shared import exceptions as _exceptions

    # `MCPError` since mcp 2, `McpError` before.
    McpError = getattr(_exceptions, "MCPError", None) or _exceptions.McpError
except (ImportError, AttributeError) as exc:  # the test must fail here, never pass
    print(
        f"error: the Python `mcp` package is missing ({exc}); "
        "install it with `python3 -m pip install mcp` (.ci/run does)",
        file=sys.stderr,
    )
    sys.exit(3)


def field(obj, snake):
    """A model's field by its mcp 2 name (snake_case) or its mcp 1 name."""
    if hasattr(obj, snake):
        return getattr(obj, snake)
    head, *rest = snake.split("_")
    return getattr(obj, head + "".join(w.title() for w in rest))


class Driver:
    def __init__(self, session):
        self.session = session
        self.calls = []

    async def call(self, tool, **arguments):
        entry = {"tool": tool, "arguments": arguments}
        try:
            result = await self.session.call_tool(tool, arguments)
        except McpError as exc:
            entry["protocol_error"] = str(exc)
            self.calls.append(entry)
            return entry
        entry["is_error"] = bool(field(result, "is_error"))
        entry["structured"] = field(result, "structured_content")
        entry["text"] = [c.text for c in result.content if c.type == "text"]
        self.calls.append(entry)
        return entry


async def drive(d, repo, plan_file):
    """check, start, then every task by `next` until it says checkpoint."""
    await d.call("check", file=plan_file)
    await d.call("start", file=plan_file)
    await d.call("status")
    for _ in range(10):
        nxt = await d.call("next")
        step = nxt.get("structured") or {}
        if step.get("action") != "start":
            break
        task = step["task"]["id"]
        started = await d.call("task_start", id=task)
        worktree = started["structured"]["worktree"]
        with open(os.path.join(worktree, f"{task}.txt"), "w") as f:
            f.write(f"made by {task} over MCP\n")
        await d.call(
            "task_done",
            id=task,
            message=f"{task}: over MCP",
            handoff=f"handoff of {task}: wrote {task}.txt",
        )
    await d.call("checkpoint")
    await d.call("status")
    await d.call("log", max=3)
    await d.call("report")


async def refuse(d, repo, plan_file):
    """What the CLI refuses, through MCP: a bad task id, an id that looks
    like an option, a task of no plan, an unknown argument."""
    await d.call("start", file=plan_file)
    await d.call("task_start", id="nope")
    await d.call("task_start", id="--help")
    await d.call("task_done", id="a", handoff="never landed")
    await d.call("task_start", id="a", bogus=True)
    await d.call("status", repo="no-such-dir")
    await d.call("task_retry", id="a")


async def same_json(d, repo, plan_file=None):
    """One call per read-only tool, for comparison with the CLI's JSON."""
    await d.call("status")
    await d.call("next")
    await d.call("log")


async def reject(d, repo, task, comments):
    """`task_reject` of a task waiting in review."""
    await d.call("task_reject", id=task, comments=comments)


async def approve(d, repo, task):
    """`task_approve` of a task waiting in review, then one of no task."""
    await d.call("task_approve", id=task)
    await d.call("task_approve", id="nope")


async def calls(d, repo, script):
    """The calls a test names, in order: a JSON list of [tool, arguments]."""
    for tool, arguments in json.loads(script):
        await d.call(tool, **arguments)


SCENARIOS = {
    "drive": drive,
    "refuse": refuse,
    "same_json": same_json,
    "reject": reject,
    "approve": approve,
    "calls": calls,
}


async def main():
    scenario, repo, *rest = sys.argv[1:]
    server = StdioServerParameters(
        command="git",
        args=["orch", "mcp"],
        cwd=repo,
        env=dict(os.environ),  # the test's hermetic git environment
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            d = Driver(session)
            await SCENARIOS[scenario](d, repo, *rest)
    out = {
        "server": {
            "name": field(init, "server_info").name,
            "version": field(init, "server_info").version,
            "instructions": init.instructions,
        },
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": field(t, "input_schema"),
                "output_schema": field(t, "output_schema"),
                "read_only": bool(
                    t.annotations and field(t.annotations, "read_only_hint")
                ),
            }
            for t in tools.tools
        ],
        "calls": d.calls,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
