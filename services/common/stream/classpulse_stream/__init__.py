"""The pipeline stages' Kafka side: client factories, the consume-process-produce stage loop with its dead letters, the dead-letter replay tool, stage metrics and the health server."""
