"""Audio pipeline stages: loading, layouts, stats, silence, speech, findings."""
