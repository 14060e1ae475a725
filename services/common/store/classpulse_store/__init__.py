"""Redis: the client factory (sentinels included), the class registry, every key of a class, the stages' attempt ledger."""
