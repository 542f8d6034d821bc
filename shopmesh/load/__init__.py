"""`shopmesh load`: an open-model load generator with a realistic shopper mix."""
