"""The whole loop against a stage: deployed (make e2e) or local (make test)."""
