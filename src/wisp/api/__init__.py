"""Resource kinds, manifest loading, defaulting and validation."""
