"""Framework doors: read a framework's `tools/call` into a `ToolCall`, hand it to the gate,
write the result back; and hang the page, the prices and the lifespan on the server.

- `mcpserver`: the MCP SDK's `MCPServer` (an `Extension`, plus two middlewares).
- `fastmcp`: standalone FastMCP 4 (the outermost `Middleware`, plus a `ServerExtension`).

A third framework is one more module here and one line in `Payments.install`.
"""
