"""Hostile targets for tests/test_isolation.py: each an ``nn.LSTM`` with one behaviour that must
not crash, hang, fool or poison the oracle (docs/isolation.md has the table of verdicts)."""
