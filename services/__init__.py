"""The four shopmesh services and the server runtime they share."""
