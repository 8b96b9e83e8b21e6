"""MySQL/MariaDB operations that do real work: databases, users, schema changes, backups."""
