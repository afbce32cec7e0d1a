"""The hosted payment page and x402 HTTP resource at `{public_url}/pay/{paymentRequestId}`."""

from ..chains.demo_wallet import DemoWallet
from .app import PaymentPage

__all__ = ["DemoWallet", "PaymentPage"]
