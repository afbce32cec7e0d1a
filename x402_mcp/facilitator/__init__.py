"""Our own x402 facilitator: the standard HTTP API over any settlement backend.

```python
app = facilitator_app(LocalSettlement.from_rpc(rpc_url, gas_key, network="eip155:8453"))
```

One self-hosted facilitator (and one gas key) can serve many MCP servers, which
then use `FacilitatorSettlement(url)`. `x402-mcp facilitator` runs it.
"""

from .app import MAX_BODY_BYTES, facilitator_app

__all__ = ["MAX_BODY_BYTES", "facilitator_app"]
