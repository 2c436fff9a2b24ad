"""Retrieval and answer metrics, the bundled QA sample, and the per-backend model bench."""
