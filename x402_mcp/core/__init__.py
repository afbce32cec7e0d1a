"""The sans-IO core: the payment flow (facts in, commands out), the one state machine and its
records, money, the challenge, and the small pure helpers they share. Nothing here does I/O;
every layer above may import it.
"""
