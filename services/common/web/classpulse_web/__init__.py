"""The HTTP services' FastAPI side: API keys (hashing, the Redis key store, the FastAPI dependencies), the app's error, metrics and body-limit helpers, the outbound-URL policy."""
