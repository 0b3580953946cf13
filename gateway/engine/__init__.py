"""The delivery engine: intake (group commit), workers (claim/lease, retry, order), breaker."""
