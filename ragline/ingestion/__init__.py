"""Ingestion's plain-Python work: discover files, plan the sync, lock the collection, batch the work."""
