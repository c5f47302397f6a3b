"""Keys and data storage: the platform's KMS keys, the secure bucket and the ML data buckets."""
