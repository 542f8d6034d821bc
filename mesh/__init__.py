"""shopmesh's mesh layer: contracts-driven policy, resilient channels, server plumbing."""
