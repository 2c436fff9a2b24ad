"""Serving ragline through Prefect: deployments, the work-pool worker, the local server, the client."""
