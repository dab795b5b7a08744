"""Tokens and passwords: small, pure, keyword-only helpers."""
