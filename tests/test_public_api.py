"""The public surface: each public module's `__all__`, pinned, and every import path the
docs, the README and the package's own messages recommend, checked to work.

A name added to or removed from a public module is a change of the API: update the pin
here and the docs (docs/reference/) in the same commit.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PUBLIC_API: dict[str, list[str]] = {
    "x402_mcp": [
        "Asset",
        "ConfigurationError",
        "InsufficientFunds",
        "InvalidPrice",
        "InvalidSignature",
        "LedgerError",
        "MalformedPayment",
        "Network",
        "PaidTool",
        "PaymentError",
        "PaymentExpired",
        "PaymentInProgress",
        "PaymentMismatch",
        "PaymentNotYetValid",
        "PaymentRejected",
        "PaymentReplayed",
        "Payments",
        "SettleOrder",
        "SettlementError",
        "Solana",
        "SolanaNetwork",
        "StateConflict",
        "TooManyOpenRequests",
        "UnknownPaymentRequest",
        "X402MCPError",
        "paid",
    ],
    "x402_mcp.settlement": [
        "CDP_FACILITATOR_URL",
        "DEFAULT_FACILITATOR_URL",
        "BearerToken",
        "CdpAuth",
        "FacilitatorAuth",
        "FacilitatorSettlement",
        "LocalSettlement",
        "Settlement",
        "StaticHeaders",
        "cdp_facilitator",
        "default_settlement",
    ],
    "x402_mcp.client": [
        "AuthorizationChain",
        "Budget",
        "BudgetExceeded",
        "NoPayableOption",
        "NotConfirmed",
        "OwnedSmartAccount",
        "PaidResult",
        "PayeeNotAllowed",
        "PayingClient",
        "PaymentDeclined",
        "PaymentFailed",
        "PaymentSigner",
        "Reconciled",
        "Spend",
        "SpendState",
        "SpendStore",
        "Spending",
        "default_budget_file",
        "find_payment_required",
    ],
    "x402_mcp.chains.devchain": ["DEV_CHAIN_ID", "DevChain", "SnapshotId", "TokenChain"],
    "x402_mcp.devchain": ["DEV_CHAIN_ID", "DevChain", "SnapshotId", "TokenChain"],
    "x402_mcp.ledger": [
        "Claim",
        "Ledger",
        "PaymentKey",
        "PaymentRequest",
        "PostgresLedger",
        "SQLLedger",
        "SQLiteLedger",
        "SettlementRecord",
        "open_ledger",
    ],
    "x402_mcp.facilitator": [
        "AMOUNT_BELOW_MINIMUM",
        "ASSET_NOT_ALLOWED",
        "DEFAULT_MIN_AMOUNT",
        "MAX_BODY_BYTES",
        "PAYEE_NOT_ALLOWED",
        "TOKEN_VARIABLE",
        "facilitator_app",
    ],
    "x402_mcp.page": ["PaymentPage"],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
def test_all_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC_API[module_name]), (
        f"{module_name}.__all__ changed: update PUBLIC_API here and the API reference in docs/"
    )
    assert len(set(module.__all__)) == len(module.__all__), f"{module_name}.__all__ repeats a name"


@pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
def test_every_exported_name_imports(module_name: str) -> None:
    # A fresh interpreter, so a lazy name (`LocalSettlement`) is loaded by the import itself,
    # not found because another test already imported its module.
    names = ", ".join(PUBLIC_API[module_name])
    subprocess.run(
        [sys.executable, "-c", f"from {module_name} import {names}"],
        check=True,
        cwd=ROOT,
        timeout=120,
    )


def test_the_lazy_settlement_export_is_the_class_itself() -> None:
    from x402_mcp.settlement import LocalSettlement
    from x402_mcp.settlement.local import LocalSettlement as Defined

    assert LocalSettlement is Defined
    settlement = importlib.import_module("x402_mcp.settlement")
    with pytest.raises(AttributeError, match="NoSuchBackend"):
        settlement.NoSuchBackend  # noqa: B018


_IMPORT = re.compile(r"from[ \t]+(x402_mcp(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[\w \t,]+)")


def _recommended_imports() -> set[tuple[str, str, str]]:
    """(module, name, where) for every `from x402_mcp... import ...` in the README, the docs,
    and the package's strings (error messages and docstrings that tell a user what to import)."""
    found: set[tuple[str, str, str]] = set()

    def scan(text: str, where: str) -> None:
        for module, names in _IMPORT.findall(text):
            for part in names.strip("()").split(","):
                words = part.split()  # `A as B` imports A
                if words:
                    found.add((module, words[0], where))

    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        scan(page.read_text(), str(page.relative_to(ROOT)))
    for source in sorted((ROOT / "x402_mcp").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                scan(node.value, str(source.relative_to(ROOT)))
    return found


def test_the_docs_and_messages_recommend_imports_that_work() -> None:
    recommended = _recommended_imports()
    assert ("x402_mcp.settlement", "LocalSettlement", "README.md") in recommended or any(
        module == "x402_mcp.settlement" and name == "LocalSettlement" for module, name, _ in recommended
    ), "the docs should show where LocalSettlement comes from"
    broken = []
    for module_name, name, where in sorted(recommended):
        module = importlib.import_module(module_name)
        if not hasattr(module, name) and importlib.util.find_spec(f"{module_name}.{name}") is None:
            broken.append(f"{where}: from {module_name} import {name}")
    assert not broken, "recommended imports that fail:\n" + "\n".join(broken)


def test_recommended_names_come_from_public_modules() -> None:
    # What the docs tell a user to import comes from a public module's __all__, so the pin
    # above covers it; a doc reaching into a private module would go unnoticed otherwise.
    private = sorted(
        f"{where}: from {module} import {name}"
        for module, name, where in _recommended_imports()
        if where.endswith(".md") and module in PUBLIC_API and name not in PUBLIC_API[module]
    )
    assert not private, "the docs import names a public module does not export:\n" + "\n".join(private)
