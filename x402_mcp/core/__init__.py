"""The sans-IO core: the payment flow, the state machine and its records, money, wire."""
