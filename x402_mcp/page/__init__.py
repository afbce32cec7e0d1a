"""The hosted payment page and x402 HTTP resource at `{public_url}/pay/{paymentRequestId}`."""

from .app import PaymentPage
from .demo import DemoWallet

__all__ = ["DemoWallet", "PaymentPage"]
