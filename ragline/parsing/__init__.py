"""Partition files with unstructured and chunk them, in parser processes that can be killed."""
