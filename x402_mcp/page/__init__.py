"""The hosted payment page and x402 HTTP resource at `{public_url}/pay/{paymentRequestId}`."""

from .app import PaymentPage

__all__ = ["PaymentPage"]
