"""Framework doors: read a framework's `tools/call` into a `ToolCall`, hand it to the gate,
write the result back; and hang the page, the prices and the lifespan on the server.

- `mcpserver`: the MCP SDK's `MCPServer` (an `Extension`, plus two middlewares).
- `fastmcp`: standalone FastMCP 4 (the outermost `Middleware`, plus a `ServerExtension`).
- `handshake`: `capabilities.extensions` in the classic `initialize` answer, for both.
- `choice`: build, recognise, run and serve a server of either framework (samples, CLI).

A third framework is one more module here and one line in `Payments.install`.
"""
