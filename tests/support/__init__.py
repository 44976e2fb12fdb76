"""Test helpers: local servers (sshd, HTTP, MariaDB, PostgreSQL, Redis, Anthropic stub) and signals."""
