"""What a person watches: latency and rate statistics, training logs."""
