"""Measurements of confide's own code: the package hash and release packagings."""
