"""Identity: API keys, OIDC/JWT bearer tokens, and the principal they resolve to."""
