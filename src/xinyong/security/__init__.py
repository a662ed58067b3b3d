"""Security: who may do what (access rules as data), bearer tokens, web passwords, and the
hash-chained audit log."""
